package server_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// javaCBOR encodes values the way the AWS Java SDK's Jackson CBOR generator
// does: objects as indefinite-length maps, text and byte strings of definite
// length, timestamps as tag 1 around epoch milliseconds.
type javaCBOR struct{ bytes.Buffer }

type cborTime time.Time

func (e *javaCBOR) head(major byte, n uint64) {
	switch {
	case n < 24:
		e.WriteByte(major<<5 | byte(n))
	case n <= 0xff:
		e.WriteByte(major<<5 | 24)
		e.WriteByte(byte(n))
	case n <= 0xffff:
		e.WriteByte(major<<5 | 25)
		e.Write(binary.BigEndian.AppendUint16(nil, uint16(n)))
	case n <= 0xffffffff:
		e.WriteByte(major<<5 | 26)
		e.Write(binary.BigEndian.AppendUint32(nil, uint32(n)))
	default:
		e.WriteByte(major<<5 | 27)
		e.Write(binary.BigEndian.AppendUint64(nil, n))
	}
}

func (e *javaCBOR) value(v any) {
	switch x := v.(type) {
	case string:
		e.head(3, uint64(len(x)))
		e.WriteString(x)
	case []byte:
		e.head(2, uint64(len(x)))
		e.Write(x)
	case int:
		e.head(0, uint64(x))
	case cborTime:
		e.head(6, 1)
		e.head(0, uint64(time.Time(x).UnixMilli()))
	case []any:
		e.WriteByte(0x9f) // indefinite array
		for _, el := range x {
			e.value(el)
		}
		e.WriteByte(0xff)
	case [][2]any: // an ordered object
		e.WriteByte(0xbf) // indefinite map
		for _, kv := range x {
			e.value(kv[0])
			e.value(kv[1])
		}
		e.WriteByte(0xff)
	default:
		panic("javaCBOR: unsupported type")
	}
}

func cborCall(t *testing.T, url, op string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-cbor-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-cbor-1.1" {
		t.Fatalf("%s answered Content-Type %q", op, ct)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := cbor.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s answer is not CBOR: %v (% x)", op, err, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func obj(kv ...any) [][2]any {
	var o [][2]any
	for i := 0; i < len(kv); i += 2 {
		o = append(o, [2]any{kv[i], kv[i+1]})
	}
	return o
}

func enc(v any) []byte {
	var e javaCBOR
	e.value(v)
	return e.Bytes()
}

func TestCBORLikeTheJavaSDK(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	url := srv.URL()
	before := time.Now().Add(-time.Second)

	if code, out, _ := cborCall(t, url, "CreateStream", enc(obj("StreamName", "java", "ShardCount", 1))); code != 200 {
		t.Fatalf("CreateStream: %d %v", code, out)
	}
	code, out, _ := cborCall(t, url, "PutRecord", enc(obj("StreamName", "java", "PartitionKey", "pk", "Data", []byte{0, 1, 2, 0xff})))
	if code != 200 || out["ShardId"] != "shardId-000000000000" {
		t.Fatalf("PutRecord: %d %v", code, out)
	}
	seq := out["SequenceNumber"].(string)
	code, out, _ = cborCall(t, url, "PutRecords", enc(obj("StreamName", "java", "Records", []any{
		obj("PartitionKey", "a", "Data", []byte("second")),
		obj("PartitionKey", "b", "Data", []byte("third"), "ExplicitHashKey", "7"),
	})))
	if code != 200 || out["FailedRecordCount"] != uint64(0) || len(out["Records"].([]any)) != 2 {
		t.Fatalf("PutRecords: %d %v", code, out)
	}

	// AT_TIMESTAMP with a tag-1 epoch-millisecond timestamp, as Java sends it.
	code, out, _ = cborCall(t, url, "GetShardIterator", enc(obj("StreamName", "java", "ShardId", "shardId-000000000000",
		"ShardIteratorType", "AT_TIMESTAMP", "Timestamp", cborTime(before))))
	if code != 200 {
		t.Fatalf("GetShardIterator: %d %v", code, out)
	}
	code, out, _ = cborCall(t, url, "GetRecords", enc(obj("ShardIterator", out["ShardIterator"], "Limit", 10)))
	if code != 200 {
		t.Fatalf("GetRecords: %d %v", code, out)
	}
	recs := out["Records"].([]any)
	if len(recs) != 3 {
		t.Fatalf("GetRecords returned %d records", len(recs))
	}
	first := recs[0].(map[any]any)
	data, ok := first["Data"].([]byte)
	if !ok || !bytes.Equal(data, []byte{0, 1, 2, 0xff}) {
		t.Fatalf("Data is %T %v, want a byte string", first["Data"], first["Data"])
	}
	if first["SequenceNumber"] != seq || first["PartitionKey"] != "pk" {
		t.Fatalf("first record %v", first)
	}
	// The decoder reads tag 1 as epoch seconds, so Java's milliseconds show up
	// as a time whose Unix seconds are the milliseconds.
	ts, ok := first["ApproximateArrivalTimestamp"].(time.Time)
	if !ok {
		t.Fatalf("ApproximateArrivalTimestamp is %T %v, want tag 1", first["ApproximateArrivalTimestamp"], first["ApproximateArrivalTimestamp"])
	}
	if ms := ts.Unix(); ts.Nanosecond() != 0 || ms < before.UnixMilli() || ms > time.Now().UnixMilli()+1000 {
		t.Fatalf("ApproximateArrivalTimestamp %v is not integer epoch milliseconds of now", ts)
	}
	if _, ok := out["NextShardIterator"].(string); !ok {
		t.Fatalf("NextShardIterator missing: %v", out)
	}

	// DescribeStream timestamps are tag 1 epoch millis too.
	_, out, _ = cborCall(t, url, "DescribeStream", enc(obj("StreamName", "java")))
	desc := out["StreamDescription"].(map[any]any)
	if ts, ok := desc["StreamCreationTimestamp"].(time.Time); !ok || ts.Unix() < before.UnixMilli() {
		t.Fatalf("StreamCreationTimestamp %T %v", desc["StreamCreationTimestamp"], desc["StreamCreationTimestamp"])
	}

	// Errors come back in CBOR with the AWS type and the header.
	code, out, h := cborCall(t, url, "DescribeStream", enc(obj("StreamName", "missing")))
	if code != 400 || out["__type"] != "ResourceNotFoundException" || h.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" {
		t.Fatalf("missing stream: %d %v", code, out)
	}
	code, out, _ = cborCall(t, url, "PutRecord", enc(obj("StreamName", "java", "PartitionKey", 5, "Data", []byte("x"))))
	if code != 400 || out["__type"] != "SerializationException" {
		t.Fatalf("wrong-typed PartitionKey: %d %v", code, out)
	}
	code, out, _ = cborCall(t, url, "PutRecord", []byte{0xbf, 0x63, 'a'})
	if code != 400 || out["__type"] != "SerializationException" {
		t.Fatalf("truncated CBOR: %d %v", code, out)
	}
	code, out, _ = cborCall(t, url, "PutRecord", enc(obj("StreamName", "java", "Data", []byte("x"))))
	if code != 400 || out["__type"] != "ValidationException" {
		t.Fatalf("missing PartitionKey: %d %v", code, out)
	}
}
