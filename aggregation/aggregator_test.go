package aggregation

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/kds"
)

// userRec is a user record as a test adds it.
type userRec struct {
	pk, ehk string
	data    []byte
}

const maxHashKey = "340282366920938463463374607431768211455"

// randomRecords returns n records whose keys repeat (to exercise the tables)
// and whose lengths straddle varint boundaries.
func randomRecords(r *rand.Rand, n int) []userRec {
	pks := []string{"a", "user-1", "user-2", "ключ", strings.Repeat("p", 256), "🙂"}
	ehks := []string{"0", "1", "170141183460469231731687303715884105728", maxHashKey}
	lengths := []int{0, 1, 127, 128, 300, 16383, 16384}
	out := make([]userRec, n)
	for i := range out {
		var u userRec
		if r.IntN(3) == 0 {
			u.pk = pks[r.IntN(len(pks))]
		} else {
			u.pk = fmt.Sprintf("pk-%d", r.IntN(1000))
		}
		switch r.IntN(4) {
		case 0:
			u.ehk = ehks[r.IntN(len(ehks))]
		case 1:
			u.ehk = fmt.Sprint(r.Uint64())
		}
		size := r.IntN(200)
		if r.IntN(8) == 0 {
			size = lengths[r.IntN(len(lengths))]
		}
		u.data = make([]byte, size)
		for j := range u.data {
			u.data[j] = byte(r.UintN(256))
		}
		out[i] = u
	}
	return out
}

func newAggregator(t testing.TB, opts ...Option) *Aggregator {
	t.Helper()
	a, err := NewAggregator(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkDecodes deaggregates a container and compares it with the records
// added.
func checkDecodes(t *testing.T, c Container, want []userRec) {
	t.Helper()
	if c.Records != len(want) {
		t.Fatalf("container holds %d records, want %d", c.Records, len(want))
	}
	got := Deaggregate(nil, KinesisRecord{Data: c.Data, PartitionKey: c.PartitionKey, SequenceNumber: "49"})
	if len(want) == 1 && !bytes.HasPrefix(want[0].data, []byte(magic)) {
		// Raw: the record travels as the Kinesis record itself.
		if c.PartitionKey != want[0].pk || c.ExplicitHashKey != want[0].ehk || !bytes.Equal(c.Data, want[0].data) {
			t.Fatalf("raw container %q/%q/%x, want %q/%q/%x", c.PartitionKey, c.ExplicitHashKey, c.Data, want[0].pk, want[0].ehk, want[0].data)
		}
		if len(got) != 1 || got[0].Aggregated || got[0].Err != nil {
			t.Fatalf("raw container deaggregated to %+v", got)
		}
		return
	}
	if c.PartitionKey != AggregatePartitionKey {
		t.Fatalf("container partition key %q, want %q", c.PartitionKey, AggregatePartitionKey)
	}
	wantEHK := want[0].ehk
	if wantEHK == "" {
		wantEHK = kds.HashPartitionKey(want[0].pk).String()
	}
	if c.ExplicitHashKey != wantEHK {
		t.Fatalf("container explicit hash key %q, want %q", c.ExplicitHashKey, wantEHK)
	}
	if len(got) != len(want) {
		t.Fatalf("deaggregated %d records, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		w := want[i]
		if g.Err != nil || !g.Aggregated || g.SubSequenceNumber != int64(i) || g.SequenceNumber != "49" ||
			g.PartitionKey != w.pk || g.ExplicitHashKey != w.ehk || !bytes.Equal(g.Data, w.data) {
			t.Fatalf("record %d = %+v, want %q/%q/%x", i, g, w.pk, w.ehk, w.data)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		recs []userRec
	}{
		{"one raw", []userRec{{pk: "k", data: []byte("hello")}}},
		{"one raw with hash key", []userRec{{pk: "k", ehk: "42", data: []byte("hello")}}},
		{"one raw empty data", []userRec{{pk: "k"}}},
		{"two same key", []userRec{{pk: "k", data: []byte("a")}, {pk: "k", data: []byte("b")}}},
		{"hash keys mixed", []userRec{{pk: "k1", data: []byte("a")}, {pk: "k2", ehk: "7", data: []byte("b")}, {pk: "k1", ehk: maxHashKey, data: nil}, {pk: "k3", ehk: "7", data: []byte("d")}}},
		{"first has hash key", []userRec{{pk: "k1", ehk: "0", data: []byte("a")}, {pk: "k2", data: []byte("b")}}},
		{"unicode keys", []userRec{{pk: "ключ", data: []byte("a")}, {pk: "🙂", data: []byte{0, 0xff}}}},
		{"random 200", randomRecords(r, 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAggregator(t, MaxSize(1<<20))
			for _, u := range tt.recs {
				if err := a.Add(u.pk, u.ehk, u.data); err != nil {
					t.Fatal(err)
				}
			}
			size, putSize := a.Size(), a.PutSize()
			c := a.Build(nil)
			if len(c.Data) != size || putSize != len(c.Data)+len(c.PartitionKey) {
				t.Fatalf("Size %d, PutSize %d; built %d bytes with key %q", size, putSize, len(c.Data), c.PartitionKey)
			}
			checkDecodes(t, c, tt.recs)
			if a.Len() != 0 || a.Size() != 0 || a.PutSize() != 0 {
				t.Fatalf("Build did not reset: Len %d Size %d", a.Len(), a.Size())
			}
		})
	}
}

// TestSizeIsExact adds random records one by one and checks after each that
// Size and PutSize match what AppendEncoded writes.
func TestSizeIsExact(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	a := newAggregator(t, MaxSize(1<<20))
	var buf []byte
	for shape := range 300 {
		recs := randomRecords(r, 1+r.IntN(60))
		for i, u := range recs {
			if err := a.Add(u.pk, u.ehk, u.data); err != nil {
				t.Fatal(err)
			}
			buf = a.AppendEncoded(buf[:0])
			if a.Size() != len(buf) || a.PutSize() != len(buf)+len(a.PartitionKey()) {
				t.Fatalf("shape %d after %d records: Size %d PutSize %d, encoded %d bytes", shape, i+1, a.Size(), a.PutSize(), len(buf))
			}
		}
		checkDecodes(t, a.Build(nil), recs)
	}
}

// TestMatchesProtobufLibrary checks the hand-written encoding byte for byte
// against the protobuf library's deterministic encoding of the KPL messages.
func TestMatchesProtobufLibrary(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for shape := range 200 {
		recs := randomRecords(r, 2+r.IntN(40))
		a := newAggregator(t, MaxSize(1<<20))
		var pks, ehks []string
		pkIdx, ehkIdx := map[string]int{}, map[string]int{}
		var refs []refRecord
		for _, u := range recs {
			if err := a.Add(u.pk, u.ehk, u.data); err != nil {
				t.Fatal(err)
			}
			if _, ok := pkIdx[u.pk]; !ok {
				pkIdx[u.pk] = len(pks)
				pks = append(pks, u.pk)
			}
			ref := refRecord{pk: pkIdx[u.pk], ehk: -1, data: u.data}
			if u.ehk != "" {
				if _, ok := ehkIdx[u.ehk]; !ok {
					ehkIdx[u.ehk] = len(ehks)
					ehks = append(ehks, u.ehk)
				}
				ref.ehk = ehkIdx[u.ehk]
			}
			refs = append(refs, ref)
		}
		if got, want := a.AppendEncoded(nil), refEncode(t, pks, ehks, refs); !bytes.Equal(got, want) {
			t.Fatalf("shape %d: encoding differs from the protobuf library:\n got %x\nwant %x", shape, got, want)
		}
	}
}

func TestDeduplicatesKeys(t *testing.T) {
	t.Parallel()
	a := newAggregator(t)
	for _, u := range []userRec{{"x", "5", []byte("1")}, {"x", "", []byte("2")}, {"y", "5", []byte("3")}, {"x", "5", []byte("4")}} {
		if err := a.Add(u.pk, u.ehk, u.data); err != nil {
			t.Fatal(err)
		}
	}
	c, err := decode(a.AppendEncoded(nil))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.pks, c.ehks) != "[x y] [5]" {
		t.Fatalf("tables %q %q, want [x y] [5]", c.pks, c.ehks)
	}
}

// TestLimit checks the boundary: a container exactly at MaxSize is built, one
// byte less refuses the last record with ErrFull and changes nothing.
func TestLimit(t *testing.T) {
	t.Parallel()
	recs := randomRecords(rand.New(rand.NewPCG(7, 8)), 50)
	probe := newAggregator(t, MaxSize(1<<20))
	for _, u := range recs {
		if err := probe.Add(u.pk, u.ehk, u.data); err != nil {
			t.Fatal(err)
		}
	}
	full := probe.PutSize()

	exact := newAggregator(t, MaxSize(full))
	for _, u := range recs {
		if err := exact.Add(u.pk, u.ehk, u.data); err != nil {
			t.Fatalf("MaxSize %d refused a record: %v", full, err)
		}
	}
	if exact.PutSize() != full {
		t.Fatalf("PutSize %d, want %d", exact.PutSize(), full)
	}

	short := newAggregator(t, MaxSize(full-1))
	for _, u := range recs[:len(recs)-1] {
		if err := short.Add(u.pk, u.ehk, u.data); err != nil {
			t.Fatal(err)
		}
	}
	before := short.AppendEncoded(nil)
	last := recs[len(recs)-1]
	if err := short.Add(last.pk, last.ehk, last.data); !errors.Is(err, ErrFull) {
		t.Fatalf("Add past MaxSize = %v, want ErrFull", err)
	}
	if after := short.AppendEncoded(nil); !bytes.Equal(before, after) || short.Len() != len(recs)-1 {
		t.Fatal("a refused Add changed the container")
	}
	checkDecodes(t, short.Build(nil), recs[:len(recs)-1])
	if err := short.Add(last.pk, last.ehk, last.data); err != nil {
		t.Fatalf("Add after Build: %v", err)
	}

	// The stream limit caps aggregates too when it is the smaller one.
	capped := newAggregator(t, MaxSize(1<<20), MaxRecordSize(full-1))
	var err error
	for _, u := range recs {
		if err = capped.Add(u.pk, u.ehk, u.data); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) || capped.PutSize() > full-1 {
		t.Fatalf("MaxRecordSize below the aggregate: err %v, PutSize %d", err, capped.PutSize())
	}
}

// TestLargeRecordGoesRaw: a record over MaxSize but within MaxRecordSize is
// accepted alone and built raw; one over MaxRecordSize is ErrTooLarge.
func TestLargeRecordGoesRaw(t *testing.T) {
	t.Parallel()
	a := newAggregator(t, MaxSize(1000), MaxRecordSize(5000))
	if err := a.Add("k", "", []byte("small")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{'x'}, 4999)
	if err := a.Add("k", "", big); !errors.Is(err, ErrFull) {
		t.Fatalf("big record into a non-empty container: %v, want ErrFull", err)
	}
	a.Build(nil)
	if err := a.Add("k", "", big); err != nil {
		t.Fatalf("big record (PutSize 5000) into an empty container: %v", err)
	}
	if err := a.Add("k", "", []byte("s")); !errors.Is(err, ErrFull) {
		t.Fatalf("second record after a big one: %v, want ErrFull", err)
	}
	checkDecodes(t, a.Build(nil), []userRec{{pk: "k", data: big}})
	if err := a.Add("kk", "", big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("record of 5001 bytes with MaxRecordSize 5000: %v, want ErrTooLarge", err)
	}
	if a.Len() != 0 {
		t.Fatal("ErrTooLarge added the record")
	}
}

func TestInvalidRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pk, ehk string
		ok            bool
	}{
		{"empty partition key", "", "", false},
		{"257 characters", strings.Repeat("k", 257), "", false},
		{"256 characters", strings.Repeat("k", 256), "", true},
		{"256 multibyte characters", strings.Repeat("é", 256), "", true},
		{"257 multibyte characters", strings.Repeat("é", 257), "", false},
		{"hash key leading zero", "k", "01", false},
		{"hash key not decimal", "k", "12a", false},
		{"hash key negative", "k", "-1", false},
		{"hash key 2^128", "k", "340282366920938463463374607431768211456", false},
		{"hash key max", "k", maxHashKey, true},
		{"hash key zero", "k", "0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Aggregator
			err := a.Add(tt.pk, tt.ehk, []byte("d"))
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidRecord)) {
				t.Fatalf("Add = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && a.Len() != 0 {
				t.Fatal("invalid record was added")
			}
		})
	}
}

func TestNewAggregatorValidates(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]Option{{MaxSize(0)}, {MaxSize(-1)}, {MaxRecordSize(0)}, {MaxRecordSize(10<<20 + 1)}} {
		if _, err := NewAggregator(opts...); err == nil {
			t.Errorf("NewAggregator accepted %v", opts)
		}
	}
	if _, err := NewAggregator(MaxSize(1), MaxRecordSize(10<<20)); err != nil {
		t.Fatal(err)
	}
}

// TestZeroValueUsesDefaults: the zero Aggregator stops at DefaultMaxSize.
func TestZeroValueUsesDefaults(t *testing.T) {
	t.Parallel()
	var a Aggregator
	data := make([]byte, 1000)
	var err error
	for i := 0; err == nil; i++ {
		err = a.Add(fmt.Sprint(i), "", data)
	}
	if !errors.Is(err, ErrFull) || a.PutSize() > DefaultMaxSize || a.PutSize() < DefaultMaxSize-1100 {
		t.Fatalf("zero Aggregator stopped with %v at PutSize %d", err, a.PutSize())
	}
	if c := (&Aggregator{}).Build(nil); c.Records != 0 || c.Data != nil || c.PartitionKey != "" {
		t.Fatalf("empty Build = %+v", c)
	}
}

// TestAddCopiesData: the caller may reuse its buffer after Add.
func TestAddCopiesData(t *testing.T) {
	t.Parallel()
	var a Aggregator
	buf := []byte("first")
	if err := a.Add("k", "", buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	if err := a.Add("k", "", buf); err != nil {
		t.Fatal(err)
	}
	checkDecodes(t, a.Build(nil), []userRec{{pk: "k", data: []byte("first")}, {pk: "k", data: []byte("XXXXX")}})
}

func TestBuildAppendsToDst(t *testing.T) {
	t.Parallel()
	var a Aggregator
	_ = a.Add("k", "", []byte("one"))
	_ = a.Add("j", "", []byte("two"))
	want := a.AppendEncoded(nil)
	c := a.Build([]byte("prefix"))
	if !bytes.Equal(c.Data, append([]byte("prefix"), want...)) {
		t.Fatalf("Build(prefix) = %x", c.Data)
	}
}

// TestLoneRecordWithMagicIsAggregated: a lone record whose data starts with
// the magic is sent aggregated, so a consumer reads back that data rather
// than an error or, worse, the records of an aggregate it happens to hold.
func TestLoneRecordWithMagicIsAggregated(t *testing.T) {
	t.Parallel()
	var inner Aggregator
	_ = inner.Add("x", "", []byte("one"))
	_ = inner.Add("y", "", []byte("two"))
	for _, data := range [][]byte{[]byte(magic), []byte(magic + "not an aggregate"), inner.AppendEncoded(nil)} {
		var a Aggregator
		if err := a.Add("k", "", data); err != nil {
			t.Fatal(err)
		}
		if a.Size() != len(a.AppendEncoded(nil)) || a.PutSize() != a.Size()+1 {
			t.Fatalf("Size %d PutSize %d, encoded %d", a.Size(), a.PutSize(), len(a.AppendEncoded(nil)))
		}
		c := a.Build(nil)
		checkDecodes(t, c, []userRec{{pk: "k", data: data}})
		if c.PartitionKey != AggregatePartitionKey || c.ExplicitHashKey != kds.HashPartitionKey("k").String() {
			t.Fatalf("container keys %q/%q", c.PartitionKey, c.ExplicitHashKey)
		}
	}
	// Its aggregated size counts against MaxRecordSize.
	a := newAggregator(t, MaxRecordSize(100))
	if err := a.Add("k", "", append([]byte(magic), make([]byte, 95)...)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("99+1 raw bytes that grow past 100 aggregated: %v, want ErrTooLarge", err)
	}
}

// Count reads only framing, so it must not take entries too short to be a
// user record at their word: 100,000 empty entries (2 bytes each) would
// otherwise size a caller's slice at 100,000 records.
func TestCountSkipsEntriesTooShortForARecord(t *testing.T) {
	body := bytes.Repeat([]byte{0x1a, 0x00}, 100_000) // field 3 (records), length 0
	sum := md5.Sum(body)
	data := append(append([]byte("\xF3\x89\x9A\xC2"), body...), sum[:]...)
	if n := Count(data); n != 1 {
		t.Fatalf("Count = %d for an aggregate of empty entries, want 1", n)
	}
	// A real aggregate is still counted exactly.
	a := newAggregator(t)
	for i := range 3 {
		if err := a.Add("k", "", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := Count(a.Build(nil).Data); n != 3 {
		t.Fatalf("Count = %d for an aggregate of 3 records, want 3", n)
	}
}
