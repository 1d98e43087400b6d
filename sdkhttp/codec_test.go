package sdkhttp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// fastCodecs are FastCodecs in JSON and in CBOR, with what takes their
// GetRecords answers and the answers' content type.
var fastCodecs = []struct {
	name        string
	opt         func(*kinesis.Options)
	takes       func([]byte) bool
	contentType string
}{
	{"json", sdkhttp.FastCodecs, sdkhttp.FastDecoderTakes, "application/x-amz-json-1.1"},
	{"cbor", sdkhttp.FastCodecsCBOR, sdkhttp.FastCBORDecoderTakes, "application/x-amz-cbor-1.1"},
}

// TestFastCodecsThroughServer puts records with FastCodecs over HTTP/1.1
// and h2c, and reads them back with FastCodecs (JSON, and GetRecords in
// CBOR) and with the SDK's own codec: both read the same GetRecordsOutput,
// the records are the ones put (keys with escapes and Unicode among them),
// the answers of a resharded stream's parent carry the same child shards,
// and the fast decoder took every answer itself.
func TestFastCodecsThroughServer(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	for _, tr := range servertest.Transports[:2] {
		for _, codec := range fastCodecs {
			t.Run(tr.Name+"/"+codec.name, func(t *testing.T) {
				testFastCodecsThroughServer(t, srv, tr.Client, codec.opt, codec.takes, codec.contentType)
			})
		}
	}
}

func testFastCodecsThroughServer(t *testing.T, srv *server.Server, newClient func(servertest.TB, *server.Server, ...func(*kinesis.Options)) *kinesis.Client,
	opt func(*kinesis.Options), takes func([]byte) bool, contentType string) {
	bodies := &keepBodies{}
	fast := newClient(t, srv, opt, func(o *kinesis.Options) { bodies.next = o.HTTPClient; o.HTTPClient = bodies })
	plain := newClient(t, srv)
	stream := "s-" + strings.ReplaceAll(t.Name(), "/", "-")
	servertest.CreateStream(t, plain, stream, 1)
	ctx := context.Background()

	putIn := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
	keys := []string{"k", "ключ ☃ 🔑", "q\"b\\s\n", ""}
	for i := range 300 {
		data := []byte(fmt.Sprintf("record %d", i))
		switch i {
		case 1:
			data = []byte{}
		case 2:
			data = bytes.Repeat([]byte{0, 0xff, 7}, 300_000)
		}
		key := keys[i%len(keys)] + "x"
		putIn.Records = append(putIn.Records, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(key)})
	}
	put, err := fast.PutRecords(ctx, putIn)
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(put.FailedRecordCount); n != 0 || len(put.Records) != len(putIn.Records) {
		t.Fatalf("%d of %d records failed, %d results", n, len(putIn.Records), len(put.Records))
	}

	shardID := aws.ToString(servertest.Shards(t, plain, stream)[0].ShardId)
	split := func() {
		if _, err := plain.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shardID),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
			t.Fatal(err)
		}
		if err := servertest.WaitActive(ctx, plain, stream); err != nil {
			t.Fatal(err)
		}
	}
	split()
	// Both clients read the whole parent shard page by page from
	// the same iterator positions.
	it, err := plain.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	iter, got, sawChildren := it.ShardIterator, 0, false
	for pages := 0; iter != nil && pages < 50; pages++ {
		in := &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(200)}
		a, err := fast.GetRecords(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := plain.GetRecords(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		iter = a.NextShardIterator
		a.ResultMetadata, b.ResultMetadata = middleware.Metadata{}, middleware.Metadata{} // request IDs, timings
		a.MillisBehindLatest, b.MillisBehindLatest = nil, nil                             // the clock moves between the calls
		a.NextShardIterator, b.NextShardIterator = nil, nil                               // iterators are minted per call
		if !reflect.DeepEqual(a, b) {
			for i := range min(len(a.Records), len(b.Records)) {
				if !reflect.DeepEqual(a.Records[i], b.Records[i]) {
					t.Errorf("record %d: %+v vs %+v", i, a.Records[i], b.Records[i])
					break
				}
			}
			t.Fatalf("page %d: FastCodecs and the SDK read different outputs: %d/%d records, children %+v / %+v", pages, len(a.Records), len(b.Records), a.ChildShards, b.ChildShards)
		}
		for _, r := range a.Records {
			if want := putIn.Records[got]; !bytes.Equal(r.Data, want.Data) || aws.ToString(r.PartitionKey) != aws.ToString(want.PartitionKey) {
				t.Fatalf("record %d: read %.20q key %q, put %.20q key %q", got, r.Data, aws.ToString(r.PartitionKey), want.Data, aws.ToString(want.PartitionKey))
			}
			got++
		}
		sawChildren = sawChildren || len(a.ChildShards) == 2
		if len(a.Records) == 0 && len(a.ChildShards) > 0 {
			break
		}
	}
	if got != 300 || !sawChildren {
		t.Fatalf("read %d records (want 300), child shards seen: %v", got, sawChildren)
	}
	for i, b := range bodies.bodies {
		if !takes(b) {
			t.Errorf("the fast decoder left ksp's GetRecords answer %d to the SDK's: %q", i, b[max(0, len(b)-400):])
		}
		if ct := bodies.types[i]; ct != contentType {
			t.Errorf("GetRecords answer %d: Content-Type %q, want %q", i, ct, contentType)
		}
	}
}

// keepBodies keeps the body and content type of every GetRecords answer.
type keepBodies struct {
	next   sdkhttp.HTTPClient
	bodies [][]byte
	types  []string
}

func (c *keepBodies) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	if err != nil || r.Header.Get("X-Amz-Target") != "Kinesis_20131202.GetRecords" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.bodies = append(c.bodies, body)
	c.types = append(c.types, resp.Header.Get("Content-Type"))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// TestFastCodecsTypedErrors: calls that fail still fail with the SDK's
// typed errors under FastCodecs, GetRecords in CBOR too.
func TestFastCodecsTypedErrors(t *testing.T) {
	for _, codec := range fastCodecs {
		t.Run(codec.name, func(t *testing.T) { testFastCodecsTypedErrors(t, codec.opt) })
	}
}

func testFastCodecsTypedErrors(t *testing.T, opt func(*kinesis.Options)) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	c := servertest.Client(t, srv, opt, servertest.NoRetries)
	servertest.CreateStream(t, c, "s", 1)
	ctx := context.Background()
	shardID := aws.ToString(servertest.Shards(t, c, "s")[0].ShardId)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		_, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		return err
	}
	put := func() error {
		_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"),
			Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}})
		return err
	}
	var throttled *types.ProvisionedThroughputExceededException
	var expired *types.ExpiredIteratorException
	var notFound *types.ResourceNotFoundException
	for _, c := range []struct {
		code string
		call func() error
		as   any
	}{
		{"ProvisionedThroughputExceededException", get, &throttled},
		{"ProvisionedThroughputExceededException", put, &throttled},
		{"ExpiredIteratorException", get, &expired},
		{"ResourceNotFoundException", put, &notFound},
	} {
		if err := srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"GetRecords": 1, "PutRecords": 1}, ErrorCode: c.code}); err != nil {
			t.Fatal(err)
		}
		if err := c.call(); !errors.As(err, c.as) {
			t.Errorf("injected %s: got %T %v, want %T", c.code, err, err, c.as)
		}
	}
}

// retryOnce fails the first PutRecords it sees with a 500 InternalFailure
// (without sending it on), and keeps the body of every PutRecords attempt.
type retryOnce struct {
	next   sdkhttp.HTTPClient
	mu     sync.Mutex // guards bodies
	bodies [][]byte
}

func (c *retryOnce) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" {
		return c.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, body)
	first := len(c.bodies) == 1
	c.mu.Unlock()
	if first {
		return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:  http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
			Body:    io.NopCloser(bytes.NewReader([]byte(`{"__type":"InternalFailure","message":"try again"}`))),
			Request: r}, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return c.next.Do(r)
}

// TestFastCodecsRetrySendsSameBody: a PutRecords retried by the SDK sends
// the pooled body again, whole, and the stream holds its records once.
func TestFastCodecsRetrySendsSameBody(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	rc := &retryOnce{next: sdkhttp.Fix(sdkhttp.NewPooled())}
	c := servertest.ClientHTTP11(t, srv, sdkhttp.FastCodecs, func(o *kinesis.Options) { o.HTTPClient = rc })
	servertest.CreateStream(t, c, "s", 1)
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
	for i := range 100 {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(i)}, 1000), PartitionKey: aws.String(fmt.Sprint(i))})
	}
	if _, err := c.PutRecords(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(rc.bodies) != 2 || !bytes.Equal(rc.bodies[0], rc.bodies[1]) || len(rc.bodies[0]) < 100*1000 {
		t.Fatalf("%d attempts; bodies equal: %v", len(rc.bodies), len(rc.bodies) == 2 && bytes.Equal(rc.bodies[0], rc.bodies[1]))
	}
	// Another call reuses the pooled buffer: the first call's records stay as put.
	if _, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("later"), PartitionKey: aws.String("k")}}}); err != nil {
		t.Fatal(err)
	}
	shardID := aws.ToString(servertest.Shards(t, c, "s")[0].ShardId)
	recs := servertest.ReadShard(t, c, "s", shardID)
	if len(recs) != 101 {
		t.Fatalf("the stream holds %d records, want 101", len(recs))
	}
	for i, r := range recs[:100] {
		if !bytes.Equal(r.Data, in.Records[i].Data) {
			t.Fatalf("record %d changed", i)
		}
	}
}
