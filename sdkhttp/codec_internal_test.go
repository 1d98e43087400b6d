package sdkhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
)

var getRecordsSchema = smithy.NewOperationSchema(schemas.GetRecords, schemas.GetRecordsInput, schemas.GetRecordsOutput)

// sdkGetRecords decodes a 200 GetRecords body with the SDK's own codec; a
// panic of the SDK's decoder counts as an error.
func sdkGetRecords(body []byte) (out *kinesis.GetRecordsOutput, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("SDK decoder panicked: %v", p)
		}
	}()
	out = new(kinesis.GetRecordsOutput)
	err = awsjson.New11(schemas.Kinesis_20131202).DeserializeResponse(context.Background(), getRecordsSchema, kinesis.TypeRegistry, response(200, body), out)
	return out, err
}

func response(status int, body []byte) *smithyhttp.Response {
	return &smithyhttp.Response{Response: &http.Response{
		StatusCode: status, Header: http.Header{}, ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body)),
	}}
}

// fastGetRecords decodes the body through FastCodecs' protocol.
func fastGetRecords(body []byte) (*kinesis.GetRecordsOutput, error) {
	out := new(kinesis.GetRecordsOutput)
	p := &fastProtocol{ClientProtocol: awsjson.New11(schemas.Kinesis_20131202)}
	err := p.DeserializeResponse(context.Background(), getRecordsSchema, kinesis.TypeRegistry, response(200, body), out)
	return out, err
}

func sameOutput(t *testing.T, body []byte, fast, sdk *kinesis.GetRecordsOutput) {
	t.Helper()
	if !reflect.DeepEqual(fast, sdk) {
		t.Errorf("body %.300q:\nfast %s\nSDK  %s", body, dump(fast), dump(sdk))
	}
}

func dump(o *kinesis.GetRecordsOutput) string {
	b, _ := json.Marshal(o)
	return string(b)
}

// getRecordsBodies are GetRecords answers of the shape the fast decoder
// takes (fast: true) and of shapes it leaves to the SDK.
var getRecordsBodies = []struct {
	name string
	body string
	fast bool
}{
	{"empty page", `{"Records":[],"NextShardIterator":"AAAA","MillisBehindLatest":0}`, true},
	{"records", `{"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ApproximateArrivalTimestamp":1733100000.123,"Data":"aGVsbG8=","PartitionKey":"pk-1","EncryptionType":"NONE"},` +
		`{"SequenceNumber":"49590338271490256608559692538361571095921575989136588899","ApproximateArrivalTimestamp":1733100001,"Data":"","PartitionKey":"ключ ☃ 🔑"}],"NextShardIterator":"it-2","MillisBehindLatest":12345}`, true},
	{"spaces", " {\n \"Records\" : [ { \"SequenceNumber\" : \"1\" , \"Data\" : \"AA==\" } ] } \n", true},
	{"large data", `{"Records":[{"SequenceNumber":"1","Data":"` + strings.Repeat("QUJD", 300_000) + `","PartitionKey":"k"}],"MillisBehindLatest":1}`, true},
	{"child shards", `{"Records":[],"MillisBehindLatest":0,"ChildShards":[{"ShardId":"shardId-000000000002","ParentShards":["shardId-000000000000","shardId-000000000001"],` +
		`"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"}}]}`, true},
	{"end of shard", `{"Records":[],"MillisBehindLatest":0,"ChildShards":[]}`, true},
	{"missing members", `{"Records":[{}]}`, true},
	{"empty object", `{}`, true},
	{"timestamp fractions", `{"Records":[{"ApproximateArrivalTimestamp":1.0E9},{"ApproximateArrivalTimestamp":-1.5},{"ApproximateArrivalTimestamp":0.0019999},{"ApproximateArrivalTimestamp":1733100000.9999}]}`, true},
	{"null iterator", `{"Records":[],"NextShardIterator":null,"MillisBehindLatest":0}`, false},
	{"null record", `{"Records":[null]}`, false},
	{"null members", `{"Records":[{"Data":null,"PartitionKey":null,"SequenceNumber":"1","ApproximateArrivalTimestamp":null}],"ChildShards":null}`, false},
	{"escaped key", `{"Records":[{"SequenceNumber":"1","Data":"AA==","PartitionKey":"a\"b\\c\u00e9\n\/\b\f\r\t\u2028\u0000é"}]}`, true},
	{"escaped surrogates", `{"Records":[{"SequenceNumber":"1","PartitionKey":"\ud83d\udd11"}]}`, false},
	{"lone surrogate", `{"Records":[{"SequenceNumber":"1","PartitionKey":"\ud83d"}]}`, false},
	{"escaped apostrophe", `{"Records":[{"SequenceNumber":"1","PartitionKey":"\'"}]}`, false},
	{"bad escape", `{"Records":[{"SequenceNumber":"1","PartitionKey":"\x41"}]}`, false},
	{"unknown members", `{"Records":[{"SequenceNumber":"1","Extra":{"a":[1,-2.5e3,null,true,false,"s",{}],"b":[]}}],"Future":true,` +
		`"ChildShards":[{"ShardId":"s","New":1,"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"1","Mid":"x"}}]}`, true},
	{"unknown member with escapes", `{"Records":[],"Future":"a\nb"}`, false},
	{"unknown member, bad literal", `{"Records":[],"Future":nul}`, false},
	{"unknown member nested deep", `{"Future":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, false},
	{"repeated member", `{"MillisBehindLatest":1,"MillisBehindLatest":2}`, false},
	{"null body", `null`, false},
	{"bad base64", `{"Records":[{"Data":"!!!"}]}`, false},
	{"string timestamp", `{"Records":[{"ApproximateArrivalTimestamp":"NaN"}]}`, false},
	{"float millis", `{"MillisBehindLatest":1.5}`, false},
	{"huge millis", `{"MillisBehindLatest":99999999999999999999}`, false},
	{"truncated", `{"Records":[{"SequenceNumber":"1"`, false},
	{"trailing garbage", `{"Records":[]} x`, false},
	{"not an object", `[]`, false},
}

// TestGetRecordsDecodeMatchesSDK: every body decodes through FastCodecs'
// protocol to what the SDK's codec gives (or both fail), and the fast
// decoder takes exactly the bodies of the shapes it is meant for.
func TestGetRecordsDecodeMatchesSDK(t *testing.T) {
	for _, c := range getRecordsBodies {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			var direct kinesis.GetRecordsOutput
			if took := decodeGetRecords(body, &direct, nil); took != c.fast {
				t.Errorf("fast decoder took the body: %v, want %v", took, c.fast)
			}
			sdk, sdkErr := sdkGetRecords(body)
			fast, fastErr := fastGetRecords(body)
			if (sdkErr == nil) != (fastErr == nil) {
				t.Fatalf("SDK error %v, fast error %v", sdkErr, fastErr)
			}
			if sdkErr == nil {
				sameOutput(t, body, fast, sdk)
			}
		})
	}
}

// FuzzGetRecordsDecode: when the fast decoder takes a body, the SDK's codec
// takes it too and gives the same output.
func FuzzGetRecordsDecode(f *testing.F) {
	for _, c := range getRecordsBodies {
		if len(c.body) < 4096 {
			f.Add([]byte(c.body))
		}
	}
	// A pool whose slab holds stale bytes, as after an earlier answer.
	pool := NewSlabPool(slabSize)
	stale := pool.Slabs()
	b := stale.take()
	copy(b[:cap(b)], bytes.Repeat([]byte{0xAA}, cap(b)))
	stale.Release()
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast kinesis.GetRecordsOutput
		if !decodeGetRecords(body, &fast, nil) {
			return
		}
		sdk, err := sdkGetRecords(body)
		if err != nil {
			t.Fatalf("fast decoder took a body the SDK refuses (%v): %q", err, body)
		}
		sameOutput(t, body, &fast, sdk)
		slabs := pool.Slabs()
		defer slabs.Release()
		var lent kinesis.GetRecordsOutput
		if !decodeGetRecords(body, &lent, slabs) {
			t.Fatalf("the fast decoder took a body without slabs but not with them: %q", body)
		}
		sameOutput(t, body, &lent, sdk)
	})
}

// sdkPutRecordsBody is the body the SDK's own codec writes for in.
func sdkPutRecordsBody(t *testing.T, in *kinesis.PutRecordsInput) []byte {
	t.Helper()
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	op := smithy.NewOperationSchema(schemas.PutRecords, schemas.PutRecordsInput, schemas.PutRecordsOutput)
	if err := awsjson.New11(schemas.Kinesis_20131202).SerializeRequest(context.Background(), op, in, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(req.GetStream())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var putRecordsInputs = []struct {
	name string
	in   kinesis.PutRecordsInput
}{
	{"plain", kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
		{Data: []byte("hello"), PartitionKey: aws.String("k1")},
		{Data: []byte{}, PartitionKey: aws.String("k2"), ExplicitHashKey: aws.String("170141183460469231731687303715884105728")},
		{Data: bytes.Repeat([]byte{0, 1, 2, 0xff}, 250_000), PartitionKey: aws.String("big")},
	}}},
	{"unicode and escapes", kinesis.PutRecordsInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s"), Records: []types.PutRecordsRequestEntry{
		{Data: []byte("x"), PartitionKey: aws.String("ключ ☃ 🔑")},
		{Data: []byte("y"), PartitionKey: aws.String("q\"b\\s\n\t\x01 </script> \u2028")},
	}}},
	{"missing members", kinesis.PutRecordsInput{StreamName: aws.String("s"), StreamId: aws.String("id"), DryRun: aws.Bool(false),
		Records: []types.PutRecordsRequestEntry{{}, {Data: []byte("only data")}, {PartitionKey: aws.String("only key")}}}},
	{"no records", kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{}, DryRun: aws.Bool(true)}},
	{"nothing", kinesis.PutRecordsInput{}},
}

// TestPutRecordsEncodeMatchesSDK: the fast encoder's body means the same
// JSON as the SDK's (both decoded with encoding/json).
func TestPutRecordsEncodeMatchesSDK(t *testing.T) {
	for _, c := range putRecordsInputs {
		t.Run(c.name, func(t *testing.T) {
			fast := appendPutRecords(nil, &c.in)
			sdk := sdkPutRecordsBody(t, &c.in)
			var a, b any
			if err := json.Unmarshal(fast, &a); err != nil {
				t.Fatalf("fast body %.200q: %v", fast, err)
			}
			if err := json.Unmarshal(sdk, &b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("fast body %.300s\nSDK body  %.300s", fast, sdk)
			}
		})
	}
}

// attempts answers PutRecords with a 500 InternalFailure fails times, then
// with a success, and notes how many buffers the free list held during
// each attempt.
type attempts struct {
	fails  int
	kept   []int
	bodies [][]byte
}

func (a *attempts) Do(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	buffers.mu.Lock()
	a.kept = append(a.kept, len(buffers.bufs))
	buffers.mu.Unlock()
	a.bodies = append(a.bodies, body)
	status, answer := 200, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`
	if len(a.bodies) <= a.fails {
		status, answer = 500, `{"__type":"InternalFailure","message":"again"}`
	}
	return &http.Response{StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header: http.Header{"Content-Type": {jsonContentType}}, ContentLength: int64(len(answer)),
		Body: io.NopCloser(strings.NewReader(answer))}, nil
}

// TestPutRecordsBufferKeptUntilCallEnds: the pooled request body stays out
// of the free list through every attempt of a retried call, each attempt
// sends it whole, and it is back in the list once the call returns.
func TestPutRecordsBufferKeptUntilCallEnds(t *testing.T) {
	buffers.mu.Lock()
	buffers.bufs, buffers.bytes = nil, 0
	buffers.mu.Unlock()
	a := &attempts{fails: 2}
	c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"), HTTPClient: a,
		Credentials: aws.AnonymousCredentials{}, Retryer: retry.AddWithMaxBackoffDelay(retry.NewStandard(), time.Millisecond)}, FastCodecs)
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{{Data: bytes.Repeat([]byte("x"), 100_000), PartitionKey: aws.String("k")}}}
	if _, err := c.PutRecords(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(a.bodies) != 3 {
		t.Fatalf("%d attempts, want 3", len(a.bodies))
	}
	for i, n := range a.kept {
		if n != 0 {
			t.Errorf("attempt %d: the free list held %d buffers while the body was in use", i, n)
		}
		if !bytes.Equal(a.bodies[i], a.bodies[0]) || len(a.bodies[i]) < 100_000 {
			t.Errorf("attempt %d sent %d bytes, unlike the first (%d)", i, len(a.bodies[i]), len(a.bodies[0]))
		}
	}
	buffers.mu.Lock()
	defer buffers.mu.Unlock()
	if len(buffers.bufs) != 1 {
		t.Fatalf("after the call the free list holds %d buffers, want the body's", len(buffers.bufs))
	}
}

// TestKeptBuffersFitTheirUse: a large answer gets the large kept buffer, not
// one a small request left, and a large buffer displaces small ones when
// the kept bytes are at their limit.
func TestKeptBuffersFitTheirUse(t *testing.T) {
	saved := buffers.bufs
	savedBytes := buffers.bytes
	buffers.bufs, buffers.bytes = nil, 0
	t.Cleanup(func() { buffers.bufs, buffers.bytes = saved, savedBytes })

	buf := func(n int) *[]byte { b := make([]byte, 0, n); return &b }
	putBuffer(buf(16 << 20))
	putBuffer(buf(1 << 10))
	putBuffer(buf(64 << 10))

	if b := getBuffer(-1); cap(*b) != 16<<20 {
		t.Fatalf("a streamed answer got a buffer of %d bytes, want the largest (16 MiB)", cap(*b))
	} else {
		putBuffer(b)
	}
	if b := getBuffer(2 << 10); cap(*b) != 64<<10 {
		t.Fatalf("a 2 KiB request got a buffer of %d bytes, want the smallest that holds it (64 KiB)", cap(*b))
	} else {
		putBuffer(b)
	}
	if b := getBuffer(32 << 20); cap(*b) != 16<<20 {
		t.Fatalf("a 32 MiB need got a buffer of %d bytes, want the largest there is (16 MiB)", cap(*b))
	} else {
		putBuffer(b)
	}

	// At the limit, a large buffer displaces the small ones, not itself.
	for buffers.bytes+(16<<20) <= maxKept {
		putBuffer(buf(16 << 20))
	}
	before := len(buffers.bufs)
	putBuffer(buf(20 << 20))
	if buffers.bytes > maxKept {
		t.Fatalf("%d bytes kept, over the %d limit", buffers.bytes, maxKept)
	}
	found := false
	for _, b := range buffers.bufs {
		found = found || cap(*b) == 20<<20
		if cap(*b) < 16<<20 {
			t.Fatalf("a %d-byte buffer was kept over the 20 MiB one (%d buffers before, %d after)", cap(*b), before, len(buffers.bufs))
		}
	}
	if !found {
		t.Fatal("the 20 MiB buffer was dropped while smaller ones stayed")
	}
}

// A kept record pins one slab of data, not the whole answer's: 1 MiB of
// records is decoded into several slabs, each record's data whole in one.
func TestGetRecordsDataInBoundedSlabs(t *testing.T) {
	const n, size = 100, 10 << 10
	var b strings.Builder
	b.WriteString(`{"MillisBehindLatest":0,"NextShardIterator":"it","Records":[`)
	want := make([][]byte, n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		want[i] = bytes.Repeat([]byte{byte(i)}, size)
		fmt.Fprintf(&b, `{"ApproximateArrivalTimestamp":1.7e9,"Data":"%s","PartitionKey":"k","SequenceNumber":"%d"}`,
			base64.StdEncoding.EncodeToString(want[i]), i)
	}
	b.WriteString(`]}`)
	var out kinesis.GetRecordsOutput
	if !decodeGetRecords([]byte(b.String()), &out, nil) {
		t.Fatal("the fast decoder did not take a plain answer")
	}
	slabs := 1
	for i, r := range out.Records {
		if !bytes.Equal(r.Data, want[i]) {
			t.Fatalf("record %d: data differs", i)
		}
		if i > 0 {
			prev := out.Records[i-1].Data
			if unsafe.Pointer(unsafe.SliceData(r.Data)) != unsafe.Add(unsafe.Pointer(unsafe.SliceData(prev)), len(prev)) {
				slabs++
			}
		}
	}
	if min := n * size / slabSize; slabs < min {
		t.Fatalf("%d records of %d bytes in %d slab(s), want at least %d of %d bytes", n, size, slabs, min, slabSize)
	}
}
