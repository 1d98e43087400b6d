package server

import (
	"bytes"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/ksp-project/ksp/server/store"
)

// TestGetRecordsCBORContentLengthIsExact: a CBOR GetRecords answer declares
// its exact length and reads back, in CBOR, as the records it carries
// (invalid UTF-8 in a key as U+FFFD per byte, as in JSON).
func TestGetRecordsCBORContentLengthIsExact(t *testing.T) {
	sh := &shard{id: "shardId-000000000000", seq: newSeqPrefix(1700000000000, 0)}
	keys := []string{"pk-1", `k"q\`, "é€😀\u2028", "a\xff\xfeb", strings.Repeat("k", 256)}
	var many []store.Record
	for i := range 3000 { // several pieces
		many = append(many, store.Record{Position: uint64(i), ArrivalMilli: 1700000000000 + int64(i/7), PartitionKey: keys[i%len(keys)], Data: bytes.Repeat([]byte{byte(i)}, i%300)})
	}
	next := "AAAA"
	for name, o := range map[string]*getRecordsOutput{
		"empty":       {sh: sh, next: &next},
		"many":        {sh: sh, next: &next, behind: 12, records: many},
		"large":       {sh: sh, next: &next, records: []store.Record{{Position: 1, ArrivalMilli: 1700000000001, PartitionKey: "k", Data: make([]byte, 300<<10)}, many[7]}},
		"childShards": {sh: sh, records: many[:10], childShards: []childShard{{ShardId: "shardId-000000000001", ParentShards: []string{"shardId-000000000000"}, HashKeyRange: hashKeyRange{"0", "170141183460469231731687303715884105727"}}}},
	} {
		w := httptest.NewRecorder()
		if err := o.writeCBOR(w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body := w.Body.Bytes()
		if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
			t.Errorf("%s: Content-Length %s, wrote %d bytes", name, got, len(body))
		}
		var out struct {
			Records []struct {
				ApproximateArrivalTimestamp cbor.Tag
				Data                        []byte
				PartitionKey                string
				SequenceNumber              string
			}
			ChildShards []childShard
		}
		if err := cbor.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(out.Records) != len(o.records) || len(out.ChildShards) != len(o.childShards) {
			t.Fatalf("%s: %d records, %d child shards; want %d and %d", name, len(out.Records), len(out.ChildShards), len(o.records), len(o.childShards))
		}
		for i, r := range out.Records {
			in := o.records[i]
			if !bytes.Equal(r.Data, in.Data) || r.PartitionKey != strings.ToValidUTF8(in.PartitionKey, "\ufffd\ufffd") ||
				r.ApproximateArrivalTimestamp.Number != 1 || r.ApproximateArrivalTimestamp.Content != uint64(in.ArrivalMilli) || len(r.SequenceNumber) != seqLen {
				t.Fatalf("%s: record %d reads %+v", name, i, r)
			}
		}
	}
}
