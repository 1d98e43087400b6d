package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/server"
)

var fuzzOps = []string{"CreateStream", "DeleteStream", "DescribeStream", "DescribeStreamSummary", "ListStreams", "ListShards",
	"PutRecord", "PutRecords", "GetShardIterator", "GetRecords", "IncreaseStreamRetentionPeriod", "DecreaseStreamRetentionPeriod",
	"AddTagsToStream", "RemoveTagsFromStream", "ListTagsForStream", "TagResource", "UntagResource", "ListTagsForResource",
	"DescribeLimits", "UpdateStreamMode"}

// fuzzServer is a server with one stream, driven through ServeHTTP directly.
func fuzzServer(f *testing.F) *server.Server {
	return directServer(f, server.Options{DisableLimits: true}, `{"StreamName":"fz","ShardCount":2}`)
}

func do(srv *server.Server, ctype, op string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// checkAnswer asserts the invariants of every answer: 200 with a decodable
// body, or an error status with an AWS error type in body and header.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, decode func([]byte, any) error) {
	var body map[string]any
	if err := decode(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer %d is not decodable: %v: %q", rec.Code, err, rec.Body.Bytes())
	}
	if rec.Code == http.StatusOK {
		return
	}
	typ, _ := body["__type"].(string)
	if typ == "" || rec.Header().Get("X-Amzn-ErrorType") != typ {
		t.Fatalf("error answer %d without a type: %v", rec.Code, body)
	}
	if rec.Code >= 500 && typ != "InternalFailure" && typ != "ServiceUnavailable" {
		t.Fatalf("server error %d %s", rec.Code, typ)
	}
}

func FuzzJSONRequest(f *testing.F) {
	srv := fuzzServer(f)
	f.Add(uint8(6), []byte(`{"StreamName":"fz","PartitionKey":"k","Data":"aGk="}`))
	f.Add(uint8(7), []byte(`{"StreamName":"fz","Records":[{"PartitionKey":"k","Data":"aGk=","ExplicitHashKey":"1"}]}`))
	f.Add(uint8(8), []byte(`{"StreamName":"fz","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`))
	f.Add(uint8(5), []byte(`{"StreamName":"fz","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1.5}}`))
	f.Add(uint8(0), []byte(`{"StreamName":"x","ShardCount":"3"}`))
	f.Add(uint8(9), []byte(`{"ShardIterator":"AAAA"}`))
	f.Add(uint8(4), []byte(`{"NextToken":"eyJhIjoiIn0"}`))
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		rec := do(srv, "application/x-amz-json-1.1", fuzzOps[int(op)%len(fuzzOps)], body)
		checkAnswer(t, rec, json.Unmarshal)
	})
}

func FuzzCBORRequest(f *testing.F) {
	srv := fuzzServer(f)
	for i, v := range []any{
		map[string]any{"StreamName": "fz", "PartitionKey": "k", "Data": []byte("hi")},
		map[string]any{"StreamName": "fz", "Records": []any{map[string]any{"PartitionKey": "k", "Data": []byte("hi")}}},
		map[string]any{"StreamName": "fz", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": cbor.Tag{Number: 1, Content: 1000}},
	} {
		b, _ := cbor.Marshal(v)
		f.Add(uint8([]int{6, 7, 8}[i]), b)
	}
	f.Add(uint8(0), []byte{0xbf, 0x6a, 'S', 't', 'r', 'e', 'a', 'm', 'N', 'a', 'm', 'e', 0x61, 'z', 0xff})
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		rec := do(srv, "application/x-amz-cbor-1.1", fuzzOps[int(op)%len(fuzzOps)], body)
		checkAnswer(t, rec, cbor.Unmarshal)
	})
}
