package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/server"
)

const (
	ctJSON = "application/x-amz-json-1.1"
	ctCBOR = "application/x-amz-cbor-1.1"
)

// answerOf sends one request through ServeHTTP and returns its status line
// as "200" or "400 Type" and the error message.
func answerOf(t *testing.T, srv *server.Server, ctype, op string, body []byte) (string, string) {
	t.Helper()
	rec := do(srv, ctype, op, body)
	if rec.Code == 200 {
		return "200", ""
	}
	var eb map[string]any
	var err error
	if ctype == ctCBOR {
		err = cbor.Unmarshal(rec.Body.Bytes(), &eb)
	} else {
		err = json.Unmarshal(rec.Body.Bytes(), &eb)
	}
	if err != nil {
		t.Fatalf("%s: error body %q: %v", op, rec.Body.Bytes(), err)
	}
	msg, _ := eb["message"].(string)
	return fmt.Sprintf("%d %s", rec.Code, eb["__type"]), msg
}

// directServer is a server driven through ServeHTTP (no listener, no
// retention loop), closed when the test ends, with the streams the
// CreateStream bodies make.
func directServer(t testing.TB, opts server.Options, creates ...string) *server.Server {
	t.Helper()
	opts.RetentionInterval = -1
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, body := range creates {
		if rec := do(srv, ctJSON, "CreateStream", []byte(body)); rec.Code != 200 {
			t.Fatalf("setup %s: %d %s", body, rec.Code, rec.Body)
		}
	}
	return srv
}

func cborBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestValidationMatchesAWS sends the inputs AWS documents answers for, on
// every path that reads them (PutRecord and PutRecords, JSON and CBOR,
// default and raised MaxRecordSize).
func TestValidationMatchesAWS(t *testing.T) {
	srv := directServer(t, server.Options{DisableLimits: true}, `{"StreamName":"v","ShardCount":1}`, `{"StreamName":"big","ShardCount":1,"MaxRecordSizeInKiB":2048}`)
	mib := func(n int) []byte { return bytes.Repeat([]byte{'d'}, n) }
	put := func(stream string, data []byte, key string) []byte {
		return jsonBody(map[string]any{"StreamName": stream, "PartitionKey": key, "Data": data})
	}
	// Large records go in CBOR, whose byte strings decode without scanning.
	putCBOR := func(stream string, data []byte) []byte {
		return cborBody(t, map[string]any{"StreamName": stream, "PartitionKey": "k", "Data": data})
	}
	puts := func(stream string, data ...[]byte) []byte {
		var recs []any
		for _, d := range data {
			recs = append(recs, map[string]any{"PartitionKey": "k", "Data": d})
		}
		return jsonBody(map[string]any{"StreamName": stream, "Records": recs})
	}
	emoji := func(n int) string { return strings.Repeat("\U0001F600", n) }
	for _, tc := range []struct {
		name, ctype, op string
		body            []byte
		want, msg       string
	}{
		// Sizes: data alone over the stream's MaxRecordSize is AWS's
		// ValidationException; data and key together, InvalidArgumentException.
		{"data over 1 MiB", ctJSON, "PutRecord", put("v", mib(1<<20+1), "k"), "400 ValidationException",
			"1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576"},
		{"data over 1 MiB in CBOR", ctCBOR, "PutRecord", putCBOR("v", mib(1<<20+1)), "400 ValidationException",
			"at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576"},
		{"PutRecords entry data over 1 MiB", ctJSON, "PutRecords", puts("v", []byte("x"), mib(1<<20+1)), "400 ValidationException",
			"at 'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576"},
		{"data plus key over 1 MiB", ctJSON, "PutRecord", put("v", mib(1<<20), "k"), "400 InvalidArgumentException",
			"Record size (data + partition key) of 1048577 bytes for record 1 exceeds the MaxRecordSize of 1048576 bytes"},
		{"data 2 MiB under a 2 MiB MaxRecordSize", ctCBOR, "PutRecord", putCBOR("big", mib(2<<20-1)), "200", ""},
		{"data over a 2 MiB MaxRecordSize", ctCBOR, "PutRecord", putCBOR("big", mib(2<<20+1)), "400 ValidationException",
			"at 'data' failed to satisfy constraint: Member must have length less than or equal to 2097152"},
		{"PutRecords entry over a 2 MiB MaxRecordSize", ctJSON, "PutRecords", puts("big", mib(2<<20+1)), "400 ValidationException",
			"at 'records.1.member.data' failed to satisfy constraint: Member must have length less than or equal to 2097152"},
		{"data over the 10 MiB member limit", ctCBOR, "PutRecord", putCBOR("big", mib(10<<20+1)), "400 ValidationException",
			"Member must have length less than or equal to 10485760"},

		// Partition keys: Unicode strings of 1..256 UTF-16 code units.
		{"key of 128 emoji (256 UTF-16 units)", ctJSON, "PutRecord", put("v", []byte("x"), emoji(128)), "200", ""},
		{"key of 129 emoji (258 UTF-16 units)", ctJSON, "PutRecord", put("v", []byte("x"), emoji(129)), "400 ValidationException",
			"at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"key with invalid UTF-8", ctJSON, "PutRecord", []byte("{\"StreamName\":\"v\",\"Data\":\"eA==\",\"PartitionKey\":\"a\xffb\"}"), "400 SerializationException", "invalid UTF-8"},
		{"key with invalid UTF-8 in CBOR", ctCBOR, "PutRecord", bytes.Replace(cborBody(t, map[string]any{"StreamName": "v", "PartitionKey": "aZb", "Data": []byte("x")}), []byte("aZb"), []byte("a\xffb"), 1), "400 SerializationException", ""},
		{"key with a lone high surrogate", ctJSON, "PutRecord", []byte(`{"StreamName":"v","Data":"eA==","PartitionKey":"a\ud800b"}`), "400 SerializationException", `lone UTF-16 surrogate \ud800`},
		{"key with a lone low surrogate", ctJSON, "PutRecords", []byte(`{"StreamName":"v","Records":[{"Data":"eA==","PartitionKey":"\udc00"}]}`), "400 SerializationException", `lone UTF-16 surrogate \udc00`},
		{"key with a surrogate pair", ctJSON, "PutRecord", []byte(`{"StreamName":"v","Data":"eA==","PartitionKey":"a\ud83d\ude00b"}`), "200", ""},
		{"key with an escaped backslash before u", ctJSON, "PutRecord", []byte(`{"StreamName":"v","Data":"eA==","PartitionKey":"a\\ud800"}`), "200", ""},

		// Blobs: padded standard base64 and nothing else.
		{"data with an escaped line break", ctJSON, "PutRecord", []byte(`{"StreamName":"v","PartitionKey":"k","Data":"aGVs\nbG8="}`), "400 SerializationException", "line break"},
		{"PutRecords data with an escaped line break", ctJSON, "PutRecords", []byte(`{"StreamName":"v","Records":[{"PartitionKey":"k","Data":"aGVs\r\nbG8="}]}`), "400 SerializationException", "line break"},
		{"data as a number", ctJSON, "PutRecord", []byte(`{"StreamName":"v","PartitionKey":"k","Data":12}`), "400 SerializationException", "Value of JSON type number at 'Data' can not be converted to Blob"},

		// Numbers past their type: saturated as AWS does, never wrapped.
		{"timestamp 1e300 seconds", ctJSON, "GetShardIterator", []byte(`{"StreamName":"v","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1e300}`), "400 InvalidArgumentException",
			fmt.Sprintf("timestampInMillis: %d,", int64(math.MaxInt64))},
		{"timestamp +Inf in CBOR", ctCBOR, "GetShardIterator", cborBody(t, map[string]any{"StreamName": "v", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": cbor.Tag{Number: 1, Content: math.Inf(1)}}), "400 InvalidArgumentException",
			fmt.Sprintf("timestampInMillis: %d,", int64(math.MaxInt64))},
		{"timestamp NaN in CBOR", ctCBOR, "GetShardIterator", cborBody(t, map[string]any{"StreamName": "v", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": cbor.Tag{Number: 1, Content: math.NaN()}}), "400 SerializationException", ""},
		{"Limit 2^63", ctJSON, "ListStreams", []byte(`{"Limit":9223372036854775808}`), "400 ValidationException", "Value '2147483647' at 'limit'"},
		{"Limit 2^64-1 in CBOR", ctCBOR, "ListStreams", cborBody(t, map[string]any{"Limit": uint64(math.MaxUint64)}), "400 ValidationException", "Value '2147483647' at 'limit'"},
		{"Limit -2^63", ctJSON, "ListStreams", []byte(`{"Limit":-9223372036854775808}`), "400 ValidationException", "Value '-2147483648' at 'limit'"},

		// Tags: CreateStream applies AddTagsToStream's character rules.
		{"CreateStream tag with invalid characters", ctJSON, "CreateStream", []byte(`{"StreamName":"tagged","ShardCount":1,"Tags":{"a!b":"v"}}`), "400 InvalidArgumentException", "Some tags contain invalid characters"},
		{"CreateStream tag with a percent sign", ctJSON, "CreateStream", []byte(`{"StreamName":"tagged","ShardCount":1,"Tags":{"k":"50%"}}`), "400 InvalidArgumentException", "Failed to add tags to stream tagged"},
		{"no stream was created", ctJSON, "DescribeStreamSummary", []byte(`{"StreamName":"tagged"}`), "400 ResourceNotFoundException", ""},
	} {
		got, msg := answerOf(t, srv, tc.ctype, tc.op, tc.body)
		if got != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: got %s %q, want %s with %q", tc.name, got, msg, tc.want, tc.msg)
		}
	}
}

// clock is a controllable Options.Now: frozen at a time (only advance moves
// it) or, with frozen zero, real time plus what advance added. Tests advance
// it instead of sleeping.
type clock struct {
	frozen time.Time
	skew   atomic.Int64
}

func (c *clock) now() time.Time {
	t := c.frozen
	if t.IsZero() {
		t = time.Now()
	}
	return t.Add(time.Duration(c.skew.Load()))
}

func (c *clock) advance(d time.Duration) { c.skew.Add(int64(d)) }

// TestLargeRecordsBurst follows AWS's large-record rule: a record larger than
// the shard's 1 MiB/s write bucket is admitted when the bucket is full and
// leaves it in debt, repaid at 1 MiB/s before smaller records pass again.
func TestLargeRecordsBurst(t *testing.T) {
	clk := &clock{frozen: time.Now()}
	srv := directServer(t, server.Options{Now: clk.now}, `{"StreamName":"l","ShardCount":1,"MaxRecordSizeInKiB":10240}`)
	put := func(size int) string {
		got, msg := answerOf(t, srv, ctCBOR, "PutRecord", cborBody(t, map[string]any{"StreamName": "l", "PartitionKey": "k", "Data": bytes.Repeat([]byte{'d'}, size-1)}))
		if got != "200" && !strings.Contains(msg, "Rate exceeded") {
			t.Fatalf("PutRecord of %d bytes: %s %s", size, got, msg)
		}
		return got
	}
	steps := []struct {
		advance time.Duration
		size    int
		want    string
	}{
		{0, 2 << 20, "200"}, // full bucket: a 2 MiB record bursts
		{0, 100, "400 ProvisionedThroughputExceededException"},                      // 1 MiB of debt
		{500 * time.Millisecond, 100, "400 ProvisionedThroughputExceededException"}, // half repaid
		{time.Second, 100, "200"},                                            // repaid, and half a MiB back
		{10 * time.Second, 10 << 20, "200"},                                  // full again: the largest record
		{5 * time.Second, 100, "400 ProvisionedThroughputExceededException"}, // 9 MiB of debt, 5 repaid
		{5 * time.Second, 100, "200"},
	}
	for i, st := range steps {
		clk.advance(st.advance)
		if got := put(st.size); got != st.want {
			t.Fatalf("step %d (+%s, %d bytes): %s, want %s", i, st.advance, st.size, got, st.want)
		}
	}
}

// TestRefusedPutRecordsSpendsNoBudget refuses PutRecords calls as a whole
// (a bad ExplicitHashKey, a record over MaxRecordSize) after entries that
// would fill the shard's write bucket, then checks with the clock stopped
// that the whole bucket is still there.
func TestRefusedPutRecordsSpendsNoBudget(t *testing.T) {
	clk := &clock{frozen: time.Now()}
	srv := directServer(t, server.Options{Now: clk.now}, `{"StreamName":"r","ShardCount":1}`)
	half := bytes.Repeat([]byte{'d'}, 500_000)
	entry := func(data []byte, ehk string) map[string]any {
		e := map[string]any{"PartitionKey": "k", "Data": data}
		if ehk != "" {
			e["ExplicitHashKey"] = ehk
		}
		return e
	}
	for _, refused := range [][]any{
		{entry(half, ""), entry(half, ""), entry([]byte("x"), "340282366920938463463374607431768211456")},
		{entry(half, ""), entry(half, ""), entry(bytes.Repeat([]byte{'d'}, 1<<20), "")},
	} {
		got, msg := answerOf(t, srv, ctJSON, "PutRecords", jsonBody(map[string]any{"StreamName": "r", "Records": refused}))
		if got != "400 InvalidArgumentException" {
			t.Fatalf("a request to refuse as a whole: %s %s", got, msg)
		}
	}
	rec := do(srv, ctJSON, "PutRecords", jsonBody(map[string]any{"StreamName": "r", "Records": []any{entry(half, ""), entry(half, "")}}))
	var out struct{ FailedRecordCount int }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.FailedRecordCount != 0 {
		t.Fatalf("1 MB after refused requests, with the clock stopped: %d %s", rec.Code, rec.Body)
	}
}
