package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/server/store"
)

// TestGetRecordsContentLengthIsExact: a GetRecords answer declares its
// length before it is written in pieces; the declared length is what is
// written, for keys that need escapes or replacement, empty and large data,
// arrival times with and without a fraction, answers over many pieces, with
// a next iterator or child shards, and no records at all.
func TestGetRecordsContentLengthIsExact(t *testing.T) {
	for name, o := range lengthTestOutputs() {
		w := httptest.NewRecorder()
		if err := o.writeJSON(w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body := w.Body.Bytes()
		if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
			t.Errorf("%s: Content-Length %s, wrote %d bytes", name, got, len(body))
		}
		var out struct {
			Records []struct {
				Data         []byte
				PartitionKey string
			}
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %v in %.200s", name, err, body)
		}
		if len(out.Records) != len(o.records) {
			t.Fatalf("%s: %d records, want %d", name, len(out.Records), len(o.records))
		}
		for i, r := range out.Records {
			var key string // invalid UTF-8 reads as U+FFFD, byte by byte
			json.Unmarshal(appendJSONString(nil, o.records[i].PartitionKey), &key)
			if !bytes.Equal(r.Data, o.records[i].Data) || r.PartitionKey != key {
				t.Fatalf("%s: record %d reads %q %q", name, i, r.PartitionKey, r.Data)
			}
		}
	}
}

// lengthTestOutputs are GetRecords answers of every shape for the tests of
// their declared lengths: empty, one record, pieces of many, a record larger
// than a piece, child shards; keys with escapes and invalid UTF-8.
func lengthTestOutputs() map[string]*getRecordsOutput {
	sh := &shard{id: "shardId-000000000000", seq: newSeqPrefix(1700000000000, 0)}
	keys := []string{"pk-1", `k"q\`, "\n\t\x01", "é€😀\u2028", "\xff\xfe", strings.Repeat("k", 256)}
	var many []store.Record
	for i := range 3000 { // about 300 KB of JSON: several pieces
		many = append(many, store.Record{Position: uint64(i), ArrivalMilli: 1700000000000 + int64(i/7), PartitionKey: keys[i%len(keys)], Data: bytes.Repeat([]byte{byte(i)}, i%150)})
	}
	next := "AAAA"
	return map[string]*getRecordsOutput{
		"empty":       {sh: sh, next: &next},
		"one":         {sh: sh, next: &next, records: []store.Record{{Position: 5, ArrivalMilli: 1700000000000, PartitionKey: "k", Data: []byte{}}}},
		"many":        {sh: sh, next: &next, behind: 12, records: many},
		"large":       {sh: sh, next: &next, records: []store.Record{{Position: 1, ArrivalMilli: 1700000000001, PartitionKey: "k", Data: make([]byte, 300<<10)}, many[7]}},
		"childShards": {sh: sh, records: many[:10], childShards: []childShard{{ShardId: "shardId-000000000001", ParentShards: []string{"shardId-000000000000"}, HashKeyRange: hashKeyRange{"0", "170141183460469231731687303715884105727"}}}},
	}
}
