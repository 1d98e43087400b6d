package sdkhttp

import (
	"bytes"
	"context"
	"testing"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
)

// getRecordsWithSlabs decodes body through FastCodecs' protocol with the
// answer's data lent by s.
func getRecordsWithSlabs(t *testing.T, body []byte, s *Slabs) *kinesis.GetRecordsOutput {
	t.Helper()
	p := &fastProtocol{ClientProtocol: awsjson.New11(schemas.Kinesis_20131202)}
	var out kinesis.GetRecordsOutput
	resp := response(200, body)
	resp.ContentLength = -1
	if err := p.DeserializeResponse(WithSlabs(context.Background(), s), getRecordsSchema, kinesis.TypeRegistry, resp, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func slabStart(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// TestSlabsReusedAfterRelease: an answer decoded with WithSlabs lends its
// slabs from the pool, and once released the next answer is decoded into
// the same memory, its data correct over the stale bytes.
func TestSlabsReusedAfterRelease(t *testing.T) {
	pool := NewSlabPool(4 * slabSize)
	first := pool.Slabs()
	a := getRecordsWithSlabs(t, getRecordsPage(1000, 100), first)
	if len(first.held) != 1 {
		t.Fatalf("100 KB of data took %d slabs, want 1", len(first.held))
	}
	if got := slabStart(a.Records[0].Data); got != slabStart(first.held[0]) {
		t.Fatal("the first record's data is not in the lent slab")
	}
	firstSlab := slabStart(first.held[0])
	first.Release()
	if len(first.held) != 0 || len(pool.free) != 1 {
		t.Fatalf("after Release: %d held, %d free; want 0 and 1", len(first.held), len(pool.free))
	}

	second := pool.Slabs()
	b := getRecordsWithSlabs(t, getRecordsPage(10, 50), second)
	if slabStart(b.Records[0].Data) != firstSlab {
		t.Fatal("the second answer was not decoded into the released slab")
	}
	want := bytes.Repeat([]byte{'d'}, 50)
	for i, r := range b.Records {
		if !bytes.Equal(r.Data, want) {
			t.Fatalf("record %d of the second answer: %q", i, r.Data)
		}
	}
	second.Release()
	second.Release() // twice is once
	if len(pool.free) != 1 {
		t.Fatalf("%d free slabs after releasing twice, want 1", len(pool.free))
	}
}

// TestSlabPoolKeepsAtMostItsBound: released slabs past the pool's bound go
// to the garbage collector; a record larger than a slab gets its own
// memory, never pooled.
func TestSlabPoolKeepsAtMostItsBound(t *testing.T) {
	pool := NewSlabPool(2 * slabSize)
	s := pool.Slabs()
	out := getRecordsWithSlabs(t, getRecordsPage(5, 200_000), s) // 1 MB: 5 slabs
	if len(s.held) != 5 {
		t.Fatalf("5 records of 200 KB took %d slabs, want 5", len(s.held))
	}
	s.Release()
	if len(pool.free) != 2 {
		t.Fatalf("%d free slabs kept, want the bound, 2", len(pool.free))
	}
	if len(out.Records) != 5 {
		t.Fatalf("%d records", len(out.Records))
	}

	big := pool.Slabs()
	getRecordsWithSlabs(t, getRecordsPage(1, slabSize+1), big)
	if len(big.held) != 0 {
		t.Fatalf("a record over a slab's size was lent %d slabs", len(big.held))
	}
	var none *Slabs
	none.Release() // a nil Slabs (no WithSlabs) releases nothing
}
