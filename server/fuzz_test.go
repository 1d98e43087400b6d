package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/server"
)

// fuzzOps is every operation ksp implements; the fuzz input picks one.
var fuzzOps = server.ImplementedOperations()

func opIndex(op string) uint8 { return uint8(slices.Index(fuzzOps, op)) }

// fuzzServer is a server with one stream, driven through ServeHTTP directly.
func fuzzServer(f *testing.F) *server.Server {
	return directServer(f, server.Options{DisableLimits: true, SubscriptionLifetime: 10 * time.Millisecond}, `{"StreamName":"fz","ShardCount":2}`)
}

func do(srv *server.Server, ctype, op string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// successKeys are the members every successful answer of an operation has.
var successKeys = map[string][]string{
	"DescribeStream":            {"StreamDescription"},
	"DescribeStreamSummary":     {"StreamDescriptionSummary"},
	"ListStreams":               {"StreamNames", "HasMoreStreams", "StreamSummaries"},
	"ListShards":                {"Shards"},
	"PutRecord":                 {"ShardId", "SequenceNumber", "EncryptionType"},
	"PutRecords":                {"FailedRecordCount", "Records", "EncryptionType"},
	"GetShardIterator":          {"ShardIterator"},
	"GetRecords":                {"Records", "MillisBehindLatest"},
	"ListTagsForStream":         {"Tags", "HasMoreTags"},
	"ListTagsForResource":       {"Tags"},
	"DescribeLimits":            {"ShardLimit", "OpenShardCount", "OnDemandStreamCount", "OnDemandStreamCountLimit"},
	"UpdateShardCount":          {"StreamName", "CurrentShardCount", "TargetShardCount"},
	"EnableEnhancedMonitoring":  {"StreamName", "CurrentShardLevelMetrics", "DesiredShardLevelMetrics"},
	"DisableEnhancedMonitoring": {"StreamName", "CurrentShardLevelMetrics", "DesiredShardLevelMetrics"},
}

var (
	shardIDPattern = regexp.MustCompile(`^shardId-\d{12}$`)
	seqPattern     = regexp.MustCompile(`^\d{56}$`)
)

// checkAnswer asserts the invariants of every answer: 200 with the members
// the operation promises (and, for puts, one result per record sent, each a
// sequence number and shard or an error), or an error status with an AWS
// error type in body and header.
func checkAnswer(t *testing.T, op string, request []byte, rec *httptest.ResponseRecorder, decode func([]byte, any) error) {
	t.Helper()
	var body map[string]any
	if err := decode(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer %d is not decodable: %v: %q", rec.Code, err, rec.Body.Bytes())
	}
	if rec.Code != http.StatusOK {
		typ, _ := body["__type"].(string)
		if typ == "" || rec.Header().Get("X-Amzn-ErrorType") != typ {
			t.Fatalf("error answer %d without a type: %v", rec.Code, body)
		}
		if rec.Code >= 500 && typ != "InternalFailure" && typ != "ServiceUnavailable" {
			t.Fatalf("server error %d %s", rec.Code, typ)
		}
		return
	}
	for _, k := range successKeys[op] {
		if _, ok := body[k]; !ok {
			t.Fatalf("%s answered 200 without %s: %v", op, k, body)
		}
	}
	switch op {
	case "PutRecord":
		checkPutResult(t, body)
	case "PutRecords":
		var req struct{ Records []any }
		if err := decode(request, &req); err != nil {
			t.Fatalf("PutRecords accepted a request its client cannot decode: %v", err)
		}
		results, _ := body["Records"].([]any)
		if len(results) != len(req.Records) {
			t.Fatalf("PutRecords of %d records answered %d results", len(req.Records), len(results))
		}
		failed := 0
		for _, r := range results {
			m, _ := r.(map[string]any)
			if _, isErr := m["ErrorCode"]; isErr {
				failed++
				continue
			}
			checkPutResult(t, m)
		}
		if n, ok := asInt(body["FailedRecordCount"]); !ok || n != failed {
			t.Fatalf("FailedRecordCount %v, but %d results carry errors", body["FailedRecordCount"], failed)
		}
	case "GetShardIterator":
		if it, _ := body["ShardIterator"].(string); it == "" {
			t.Fatalf("GetShardIterator answered an empty iterator: %v", body)
		}
	case "GetRecords":
		if n, ok := asInt(body["MillisBehindLatest"]); !ok || n < 0 {
			t.Fatalf("MillisBehindLatest %v", body["MillisBehindLatest"])
		}
	case "ListShards":
		shards, _ := body["Shards"].([]any)
		for _, s := range shards {
			m, _ := s.(map[string]any)
			if id, _ := m["ShardId"].(string); !shardIDPattern.MatchString(id) {
				t.Fatalf("ListShards answered shard %v", s)
			}
		}
	}
}

func checkPutResult(t *testing.T, m map[string]any) {
	t.Helper()
	id, _ := m["ShardId"].(string)
	seq, _ := m["SequenceNumber"].(string)
	if !shardIDPattern.MatchString(id) || !seqPattern.MatchString(seq) {
		t.Fatalf("put result without a shard id and sequence number: %v", m)
	}
}

// asInt reads a JSON (float64) or CBOR (integer) number.
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		return int(n), n == float64(int(n))
	case uint64:
		return int(n), true
	case int64:
		return int(n), true
	}
	return 0, false
}

func FuzzJSONRequest(f *testing.F) {
	srv := fuzzServer(f)
	seeds := map[string][]string{
		"PutRecord":                     {`{"StreamName":"fz","PartitionKey":"k","Data":"aGk="}`, `{"StreamName":"fz","PartitionKey":"\ud83d\ude00","Data":"aGk="}`},
		"PutRecords":                    {`{"StreamName":"fz","Records":[{"PartitionKey":"k","Data":"aGk=","ExplicitHashKey":"1"},{"PartitionKey":"j","Data":""}]}`},
		"GetShardIterator":              {`{"StreamName":"fz","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`, `{"StreamName":"fz","ShardId":"shardId-000000000001","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1e300}`},
		"ListShards":                    {`{"StreamName":"fz","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1.5}}`, `{"StreamName":"fz","MaxResults":1}`},
		"CreateStream":                  {`{"StreamName":"x","ShardCount":"3"}`, `{"StreamName":"y","ShardCount":1,"Tags":{"a":"b"}}`},
		"GetRecords":                    {`{"ShardIterator":"AAAA"}`},
		"ListStreams":                   {`{"NextToken":"eyJhIjoiIn0"}`, `{"Limit":9223372036854775808}`},
		"DescribeStream":                {`{"StreamName":"fz","Limit":1}`},
		"DescribeStreamSummary":         {`{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/fz"}`},
		"AddTagsToStream":               {`{"StreamName":"fz","Tags":{"k":"v"}}`},
		"ListTagsForStream":             {`{"StreamName":"fz"}`},
		"TagResource":                   {`{"ResourceARN":"arn:aws:kinesis:us-east-1:000000000000:stream/fz","Tags":{"k":"v"}}`},
		"ListTagsForResource":           {`{"ResourceARN":"arn:aws:kinesis:us-east-1:000000000000:stream/fz"}`},
		"IncreaseStreamRetentionPeriod": {`{"StreamName":"fz","RetentionPeriodHours":48}`},
		"DescribeLimits":                {`{}`},
		"UpdateShardCount":              {`{"StreamName":"fz","TargetShardCount":4,"ScalingType":"UNIFORM_SCALING"}`},
		"SplitShard":                    {`{"StreamName":"fz","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1000"}`},
		"MergeShards":                   {`{"StreamName":"fz","ShardToMerge":"shardId-000000000000","AdjacentShardToMerge":"shardId-000000000001"}`},
		"UpdateMaxRecordSize":           {`{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/fz","MaxRecordSizeInKiB":2048}`},
		"StartStreamEncryption":         {`{"StreamName":"fz","EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}`},
		"EnableEnhancedMonitoring":      {`{"StreamName":"fz","ShardLevelMetrics":["ALL"]}`},
		"UpdateStreamMode":              {`{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/fz","StreamModeDetails":{"StreamMode":"ON_DEMAND"}}`},
	}
	for op, bodies := range seeds {
		for _, b := range bodies {
			f.Add(opIndex(op), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := fuzzOps[int(op)%len(fuzzOps)]
		checkAnswer(t, name, body, do(srv, ctJSON, name, body), json.Unmarshal)
	})
}

// cborMaps decodes CBOR maps inside maps as map[string]any, as JSON does.
var cborMaps, _ = cbor.DecOptions{DefaultMapType: reflect.TypeFor[map[string]any]()}.DecMode()

func FuzzCBORRequest(f *testing.F) {
	srv := fuzzServer(f)
	for op, v := range map[string]any{
		"PutRecord":        map[string]any{"StreamName": "fz", "PartitionKey": "k", "Data": []byte("hi")},
		"PutRecords":       map[string]any{"StreamName": "fz", "Records": []any{map[string]any{"PartitionKey": "k", "Data": []byte("hi")}}},
		"GetShardIterator": map[string]any{"StreamName": "fz", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": cbor.Tag{Number: 1, Content: 1000}},
		"ListStreams":      map[string]any{"Limit": uint64(1 << 63)},
		"ListShards":       map[string]any{"StreamName": "fz"},
		"DescribeStream":   map[string]any{"StreamName": "fz"},
		"CreateStream":     map[string]any{"StreamName": "c", "ShardCount": 1},
	} {
		b, _ := cbor.Marshal(v)
		f.Add(opIndex(op), b)
	}
	f.Add(opIndex("CreateStream"), []byte{0xbf, 0x6a, 'S', 't', 'r', 'e', 'a', 'm', 'N', 'a', 'm', 'e', 0x61, 'z', 0xff})
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := fuzzOps[int(op)%len(fuzzOps)]
		checkAnswer(t, name, body, do(srv, ctCBOR, name, body), cborMaps.Unmarshal)
	})
}
