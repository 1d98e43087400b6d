package sdkhttp

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/fxamacker/cbor/v2"
)

func mustCBOR(v any) string {
	b, err := cbor.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type m = map[string]any

func ts(ms int64) cbor.Tag { return cbor.Tag{Number: 1, Content: ms} }

// getRecordsCBORBodies are GetRecords answers in CBOR of the shape the fast
// decoder takes (fast: true) and of shapes it leaves to the transcoder.
var getRecordsCBORBodies = []struct {
	name string
	body string
	fast bool
}{
	{"empty page", mustCBOR(m{"Records": []any{}, "NextShardIterator": "AAAA", "MillisBehindLatest": 0}), true},
	{"records", mustCBOR(m{"Records": []any{
		m{"SequenceNumber": "49590338271490256608559692538361571095921575989136588898", "ApproximateArrivalTimestamp": ts(1733100000123),
			"Data": []byte("hello"), "PartitionKey": "pk-1", "EncryptionType": "NONE"},
		m{"SequenceNumber": "49590338271490256608559692538361571095921575989136588899", "ApproximateArrivalTimestamp": ts(-1500),
			"Data": []byte{}, "PartitionKey": "ключ ☃ 🔑"},
	}, "NextShardIterator": "it-2", "MillisBehindLatest": 12345}), true},
	{"child shards", mustCBOR(m{"Records": []any{}, "MillisBehindLatest": 0, "ChildShards": []any{m{"ShardId": "shardId-000000000002",
		"ParentShards": []any{"shardId-000000000000", "shardId-000000000001"},
		"HashKeyRange": m{"StartingHashKey": "0", "EndingHashKey": "340282366920938463463374607431768211455"}}}}), true},
	{"unknown members", mustCBOR(m{"Records": []any{m{"Data": []byte{1}, "New": []any{1, -2, "x", []byte{3}, true, m{"a": false}}}}, "Other": m{}}), true},
	{"indefinite map", "\xbf\x67Records\x9f\xa1\x64Data\x41\x07\xff\xff", true},
	{"missing members", mustCBOR(m{"Records": []any{m{}}}), true},
	{"empty object", mustCBOR(m{}), true},
	{"null iterator", mustCBOR(m{"Records": []any{}, "NextShardIterator": nil}), false},
	{"float millis", "\xa1\x72MillisBehindLatest\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00", false},
	{"float timestamp", mustCBOR(m{"Records": []any{m{"ApproximateArrivalTimestamp": cbor.Tag{Number: 1, Content: 1733100000123.5}}}}), false},
	{"indefinite string", "\xa1\x71NextShardIterator\x7f\x62ab\x61c\xff", false},
	{"text data", mustCBOR(m{"Records": []any{m{"Data": "aGVsbG8="}}}), false},
	{"bytes iterator", mustCBOR(m{"NextShardIterator": []byte("x")}), false},
	{"truncated", mustCBOR(m{"Records": []any{m{"SequenceNumber": "1"}}})[:12], false},
	{"trailing bytes", mustCBOR(m{"Records": []any{}}) + "\x00", false},
	{"not a map", mustCBOR([]any{}), false},
}

// TestGetRecordsCBORMatchesSDK: every CBOR answer decodes through
// FastCodecsCBOR's protocol to what the SDK's codec gives for the same
// answer in JSON (or both fail), and the fast decoder takes exactly the
// answers of the shapes it is meant for.
func TestGetRecordsCBORMatchesSDK(t *testing.T) {
	for _, c := range getRecordsCBORBodies {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			var direct kinesis.GetRecordsOutput
			if took := decodeGetRecordsCBOR(body, &direct, nil); took != c.fast {
				t.Errorf("fast decoder took the body: %v, want %v", took, c.fast)
			}
			j, jsonOK := cborToJSON(body)
			var sdk *kinesis.GetRecordsOutput
			var sdkErr error = errors.New("no JSON form")
			if jsonOK {
				sdk, sdkErr = sdkGetRecords(j)
			}
			fast, fastErr := cborGetRecords200(body)
			if (sdkErr == nil) != (fastErr == nil) {
				t.Fatalf("SDK error %v, fast error %v (JSON %s)", sdkErr, fastErr, j)
			}
			if sdkErr == nil {
				sameOutput(t, body, fast, sdk)
			}
			if c.fast && !jsonOK {
				t.Fatal("the fast decoder took an answer the transcoder refuses")
			}
		})
	}
}

// cborGetRecords200 decodes a 200 CBOR answer through FastCodecsCBOR's
// protocol.
func cborGetRecords200(body []byte) (*kinesis.GetRecordsOutput, error) {
	out := new(kinesis.GetRecordsOutput)
	p := &fastProtocol{ClientProtocol: awsjson.New11(schemas.Kinesis_20131202), cbor: true}
	resp := response(200, body)
	resp.Header.Set("Content-Type", cborContentType)
	err := p.DeserializeResponse(context.Background(), getRecordsSchema, kinesis.TypeRegistry, resp, out)
	return out, err
}

// FuzzGetRecordsCBORDecode: when the fast CBOR decoder takes an answer, the
// transcoder takes it too and the SDK's codec reads the same output from
// its JSON; the transcoder never fails on what it wrote nor panics.
func FuzzGetRecordsCBORDecode(f *testing.F) {
	for _, c := range getRecordsCBORBodies {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, jsonOK := cborToJSON(body)
		var fast kinesis.GetRecordsOutput
		if !decodeGetRecordsCBOR(body, &fast, nil) {
			return
		}
		if !jsonOK {
			t.Fatalf("the fast decoder took an answer the transcoder refuses: %q", body)
		}
		sdk, err := sdkGetRecords(j)
		if err != nil {
			t.Fatalf("the SDK refuses the transcoded answer (%v): %q → %s", err, body, j)
		}
		sameOutput(t, body, &fast, sdk)
	})
}

// TestCBORErrorAnswersTyped: a CBOR error answer reaches the caller as the
// SDK's typed error with its message; one with no JSON form still gets its
// type from the header.
func TestCBORErrorAnswersTyped(t *testing.T) {
	p := &fastProtocol{ClientProtocol: awsjson.New11(schemas.Kinesis_20131202), cbor: true}
	for _, c := range []struct {
		name, body, message string
	}{
		{"body", mustCBOR(m{"__type": "ExpiredIteratorException", "message": "Iterator expired."}), "Iterator expired."},
		{"no JSON form", "\xa1\x01\x02", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := response(400, []byte(c.body))
			resp.Header.Set("Content-Type", cborContentType)
			resp.Header.Set("X-Amzn-ErrorType", "ExpiredIteratorException")
			err := p.DeserializeResponse(context.Background(), getRecordsSchema, kinesis.TypeRegistry, resp, new(kinesis.GetRecordsOutput))
			var expired *types.ExpiredIteratorException
			if !errors.As(err, &expired) {
				t.Fatalf("got %T %v, want *types.ExpiredIteratorException", err, err)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Fatalf("error %q lacks the message %q", err, c.message)
			}
		})
	}
}

// TestGetRecordsRequestCBOR: the request is the CBOR map the Java SDK
// sends.
func TestGetRecordsRequestCBOR(t *testing.T) {
	limit, it := int32(10000), "AAAA"
	b := appendGetRecordsCBOR(nil, &kinesis.GetRecordsInput{Limit: &limit, ShardIterator: &it})
	var got map[string]any
	if err := cbor.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["Limit"] != uint64(10000) || got["ShardIterator"] != "AAAA" {
		t.Fatalf("request %v", got)
	}
}

// TestFastCodecsCBORKept: FastCodecsCBOR turns CBOR on whether or not
// FastCodecs came first, and FastCodecs after it (as the consumer and
// producer add it to each call) keeps it on.
func TestFastCodecsCBORKept(t *testing.T) {
	for _, opts := range [][]func(*kinesis.Options){
		{FastCodecsCBOR},
		{FastCodecs, FastCodecsCBOR},
		{FastCodecsCBOR, FastCodecs},
		{FastCodecsCBOR, FastCodecsCBOR, FastCodecs},
	} {
		o := kinesis.Options{Protocol: awsjson.New11(schemas.Kinesis_20131202)}
		for _, opt := range opts {
			opt(&o)
		}
		p, ok := o.Protocol.(*fastProtocol)
		if !ok || !p.cbor {
			t.Fatalf("after %d options: %T, CBOR %v", len(opts), o.Protocol, ok && p.cbor)
		}
		if _, nested := p.ClientProtocol.(*fastProtocol); nested {
			t.Fatalf("after %d options: FastCodecs wraps itself", len(opts))
		}
	}
}

// TestGetRecordsCBORSizedByTheAnswer: a record whose data repeats the
// member name "SequenceNumber" (a CBOR-encoded Kinesis record carried as
// data, say) must not make the decoder size its output by those
// occurrences: it allocates about what the answer holds.
func TestGetRecordsCBORSizedByTheAnswer(t *testing.T) {
	data := []byte(strings.Repeat("\x6eSequenceNumber", 300_000)) // 4.5 MB
	body := []byte(mustCBOR(m{"MillisBehindLatest": 0, "Records": []any{
		m{"ApproximateArrivalTimestamp": ts(1700000000000), "Data": data, "PartitionKey": "k", "SequenceNumber": "1"},
	}}))
	var out kinesis.GetRecordsOutput
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if !decodeGetRecordsCBOR(body, &out, nil) {
		t.Fatal("the fast decoder did not take the answer")
	}
	runtime.ReadMemStats(&after)
	if len(out.Records) != 1 || !bytes.Equal(out.Records[0].Data, data) {
		t.Fatalf("decoded %d records", len(out.Records))
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 3*uint64(len(body)) {
		t.Fatalf("decoding a %d-byte answer of one record allocated %d bytes", len(body), got)
	}
}
