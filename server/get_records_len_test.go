package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server/store"
)

// TestGetRecordsContentLengthIsExact: a GetRecords answer declares its
// length before it is written in pieces; the declared length is what is
// written, for keys that need escapes or replacement, empty and large data,
// arrival times with and without a fraction, answers over many pieces, with
// a next iterator or child shards, and no records at all.
func TestGetRecordsContentLengthIsExact(t *testing.T) {
	for name, o := range getRecordsOutputs() {
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

// testStream is the stream of the encoders' tests.
var testStream = &stream{created: 1700000000000}

// getRecordsOutputs are answers of every shape the encoders handle.
func getRecordsOutputs() map[string]*getRecordsOutput {
	sh := &shard{id: "shardId-000000000000", seq: newSeqPrefix(testStream.created, 0)}
	keys := []string{"pk-1", `k"q\`, "\n\t\x01", "é€😀\u2028", "\xff\xfe", strings.Repeat("k", 256)}
	var many []store.Record
	for i := range 3000 { // about 300 KB of JSON: several pieces
		many = append(many, store.Record{Position: uint64(i) << (i % 64), ArrivalMilli: 1700000000000 + int64(i/7), PartitionKey: keys[i%len(keys)], Data: bytes.Repeat([]byte{byte(i)}, i%150)})
	}
	next := "AAAA"
	one := []store.Record{{Position: 5, ArrivalMilli: 0, PartitionKey: "k", Data: []byte{}}}
	nilData := []store.Record{{Position: 5, ArrivalMilli: 1700000000000, PartitionKey: "k"}}
	large := []store.Record{{Position: 1, ArrivalMilli: 1700000000001, PartitionKey: "k", Data: make([]byte, 300<<10)}, many[7]}
	enc := func(recs []store.Record) recordEncoder { return recordEncoder{sh: sh, records: recs} }
	return map[string]*getRecordsOutput{
		"empty":       {recordEncoder: enc(nil), next: &next},
		"one":         {recordEncoder: enc(one), next: &next},
		"nil data":    {recordEncoder: enc(nilData), next: &next},
		"many":        {recordEncoder: enc(many), next: &next, behind: 1 << 40},
		"large":       {recordEncoder: enc(large), next: &next},
		"childShards": {recordEncoder: enc(many[:10]), childShards: testChildShards},
	}
}

var testChildShards = []childShard{{ShardId: "shardId-000000000001", ParentShards: []string{"shardId-000000000000"}, HashKeyRange: hashKeyRange{"0", "170141183460469231731687303715884105727"}}}

// TestGetRecordsCBORMatchesReflection: the hand-written CBOR answer is byte
// for byte what fxamacker/cbor writes for the answer's Go shape (with data
// never null), and declares its exact length.
func TestGetRecordsCBORMatchesReflection(t *testing.T) {
	for name, o := range getRecordsOutputs() {
		want, err := reflectedCBOR(o)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		if err := o.writeCBOR(w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := w.Body.Bytes(); !bytes.Equal(got, want) {
			t.Errorf("%s: wrote %d bytes %.64x…, fxamacker/cbor %d bytes %.64x…", name, len(got), got, len(want), want)
		}
		if got := w.Header().Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
			t.Errorf("%s: Content-Length %s, wrote %d bytes", name, got, w.Body.Len())
		}
	}
}

// reflectedCBOR is the answer as fxamacker/cbor encodes its Go shape.
func reflectedCBOR(o *getRecordsOutput) ([]byte, error) {
	type record struct {
		ApproximateArrivalTimestamp epochMillis `json:"ApproximateArrivalTimestamp"`
		Data                        []byte      `json:"Data"`
		PartitionKey                string      `json:"PartitionKey"`
		SequenceNumber              string      `json:"SequenceNumber"`
	}
	out := struct {
		ChildShards        []childShard `json:"ChildShards,omitempty"`
		MillisBehindLatest int64        `json:"MillisBehindLatest"`
		NextShardIterator  *string      `json:"NextShardIterator,omitempty"`
		Records            []record     `json:"Records"`
	}{ChildShards: o.childShards, MillisBehindLatest: o.behind, NextShardIterator: o.next, Records: make([]record, len(o.records))}
	for i, r := range o.records {
		out.Records[i] = record{epochMillis(r.ArrivalMilli), append([]byte{}, r.Data...), r.PartitionKey, testStream.seq(o.sh, r.Position)}
	}
	return cborEnc.Marshal(out)
}

// TestPutRecordsCBORMatchesReflection: the hand-written CBOR PutRecords
// answer is byte for byte what fxamacker/cbor writes for its Go shape, with
// entries of several shards and failed ones.
func TestPutRecordsCBORMatchesReflection(t *testing.T) {
	st := testStream
	var shards []*shard
	for i := range 10 {
		shards = append(shards, &shard{idx: i, id: kds.ShardID(i), seq: newSeqPrefix(st.created, i)})
	}
	throttled := kds.Errorf(kds.ErrCodeProvisionedThroughput, "Rate exceeded for shard %s.", shards[1].id)
	var results []putResult
	for i := range 500 {
		r := putResult{shard: shards[i%7%len(shards)+i/300], pos: uint64(i) * 37}
		switch i % 50 {
		case 3:
			r.err = throttled
		case 4:
			r.err = &kds.Error{Code: kds.ErrCodeInternalFailure}
		}
		results = append(results, r)
	}
	for _, o := range []*putRecordsOutput{
		{encryption: "NONE"},
		{encryption: "KMS", failed: 20, results: results},
	} {
		type entry struct {
			SequenceNumber string `json:"SequenceNumber,omitempty"`
			ShardId        string `json:"ShardId,omitempty"`
			ErrorCode      string `json:"ErrorCode,omitempty"`
			ErrorMessage   string `json:"ErrorMessage,omitempty"`
		}
		out := struct {
			EncryptionType    string  `json:"EncryptionType"`
			FailedRecordCount int     `json:"FailedRecordCount"`
			Records           []entry `json:"Records"`
		}{EncryptionType: o.encryption, FailedRecordCount: o.failed, Records: make([]entry, len(o.results))}
		for i, r := range o.results {
			if r.err != nil {
				out.Records[i] = entry{ErrorCode: r.err.Code, ErrorMessage: r.err.Message}
			} else {
				out.Records[i] = entry{SequenceNumber: st.seq(r.shard, r.pos), ShardId: r.shard.id}
			}
		}
		want, err := cborEnc.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.appendCBOR([]byte{}); !bytes.Equal(got, want) {
			t.Errorf("%d entries: wrote %d bytes %.64x…, fxamacker/cbor %d bytes %.64x…", len(o.results), len(got), got, len(want), want)
		}
	}
}

// TestSubscribeEventMatchesReflection: a SubscribeToShardEvent's payload is
// byte for byte what fxamacker/cbor writes for its Go shape (with data never
// null), and in JSON decodes to what encoding/json writes for it.
func TestSubscribeEventMatchesReflection(t *testing.T) {
	type record struct {
		ApproximateArrivalTimestamp epochMillis `json:"ApproximateArrivalTimestamp"`
		Data                        []byte      `json:"Data"`
		PartitionKey                string      `json:"PartitionKey"`
		SequenceNumber              string      `json:"SequenceNumber"`
	}
	type event struct {
		ChildShards                []childShard `json:"ChildShards,omitempty"`
		ContinuationSequenceNumber string       `json:"ContinuationSequenceNumber"`
		MillisBehindLatest         int64        `json:"MillisBehindLatest"`
		Records                    []record     `json:"Records"`
	}
	for name, o := range getRecordsOutputs() {
		ev := &subscribeEvent{recordEncoder: recordEncoder{sh: o.sh, records: o.records}, childShards: o.childShards, continuation: testStream.seq(o.sh, 7), behind: o.behind}
		want := event{ChildShards: o.childShards, ContinuationSequenceNumber: ev.continuation, MillisBehindLatest: o.behind, Records: make([]record, len(o.records))}
		for i, r := range o.records {
			want.Records[i] = record{epochMillis(r.ArrivalMilli), append([]byte{}, r.Data...), r.PartitionKey, testStream.seq(o.sh, r.Position)}
		}
		wantCBOR, err := cborEnc.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.appendCBOR(nil); !bytes.Equal(got, wantCBOR) {
			t.Errorf("%s: CBOR %d bytes %.64x…, fxamacker/cbor %d bytes %.64x…", name, len(got), got, len(wantCBOR), wantCBOR)
		}
		wantJSON, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var gotValue, wantValue any
		if err := json.Unmarshal(ev.appendJSON(nil), &gotValue); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		json.Unmarshal(wantJSON, &wantValue)
		if !reflect.DeepEqual(gotValue, wantValue) {
			t.Errorf("%s: JSON decodes to %.300v, encoding/json's to %.300v", name, gotValue, wantValue)
		}
	}
}
