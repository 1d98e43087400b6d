package server

import (
	"bytes"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func mustCBOR(tb testing.TB, v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzPutRecordsCBORFastPath checks the hand-written CBOR PutRecords decoder
// against fxamacker/cbor: whenever the fast path accepts a body, the slow
// decoder must accept it too and decode exactly the same request, with the
// fast path's memory pooled or its own.
func FuzzPutRecordsCBORFastPath(f *testing.F) {
	type m = map[string]any
	for _, v := range []any{
		m{"StreamName": "s", "Records": []any{m{"Data": []byte("hi"), "PartitionKey": "k"}, m{"Data": []byte{}, "PartitionKey": "é", "ExplicitHashKey": "12"}}},
		m{"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "Records": []any{}},
		m{"StreamName": "s", "Records": []any{m{"PartitionKey": "k", "Data": bytes.Repeat([]byte{7}, 300)}}},
		m{"StreamName": "s", "Records": []any{m{"PartitionKey": "k", "Data": nil}}},
	} {
		f.Add(mustCBOR(f, v))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, pooled := range []bool{true, false} {
			fast, ok := new(putScratch).decodeCBOR(body, pooled)
			if !ok {
				return
			}
			var slow putRecordsInput
			if err := cborDec.Unmarshal(body, &slow); err != nil {
				t.Fatalf("fast path accepted %x, fxamacker/cbor refused: %v", body, err)
			}
			if !sameString(fast.StreamName, slow.StreamName) || !sameString(fast.StreamARN, slow.StreamARN) || len(fast.Records) != len(slow.Records) || (fast.Records == nil) != (slow.Records == nil) {
				t.Fatalf("fast %+v != slow %+v for %x", fast, slow, body)
			}
			for i := range fast.Records {
				a, b := fast.Records[i], slow.Records[i]
				if !bytes.Equal(a.Data, b.Data) || (a.Data == nil) != (b.Data == nil) || !sameString(a.PartitionKey, b.PartitionKey) || !sameString(a.ExplicitHashKey, b.ExplicitHashKey) {
					t.Fatalf("record %d: fast %+v != slow %+v for %x", i, a, b, body)
				}
			}
		}
	})
}

// TestPutRecordsCBORFastPathFallsBack: what the fast path does not take is
// left to fxamacker/cbor, which words the errors.
func TestPutRecordsCBORFastPathFallsBack(t *testing.T) {
	type m = map[string]any
	entry := func(k string, v any) []any { return []any{m{"PartitionKey": "k", k: v}} }
	good := mustCBOR(t, m{"StreamName": "s", "Records": entry("Data", []byte("x"))})
	for name, body := range map[string][]byte{
		"null data":    mustCBOR(t, m{"StreamName": "s", "Records": entry("Data", nil)}),
		"text data":    mustCBOR(t, m{"StreamName": "s", "Records": entry("Data", "eA==")}),
		"no data":      mustCBOR(t, m{"StreamName": "s", "Records": []any{m{"PartitionKey": "k"}}}),
		"number key":   mustCBOR(t, m{"StreamName": "s", "Records": []any{m{"PartitionKey": 5, "Data": []byte("x")}}}),
		"unknown":      mustCBOR(t, m{"StreamName": "s", "Extra": 1}),
		"null name":    mustCBOR(t, m{"StreamName": nil}),
		"tagged":       append([]byte{0xc1}, good...),
		"trailing":     append(append([]byte{}, good...), 0),
		"indefinite":   append([]byte{0xbf}, append(good[1:], 0xff)...),
		"invalid utf8": mustCBOR(t, m{"StreamName": "s", "Records": []any{m{"PartitionKey": "\xff", "Data": []byte("x")}}}),
		"short":        good[:len(good)-1],
	} {
		if _, ok := new(putScratch).decodeCBOR(body, true); ok {
			t.Errorf("%s: fast path accepted %x", name, body)
		}
	}
	req, ok := new(putScratch).decodeCBOR(good, true)
	if !ok || *req.StreamName != "s" || len(req.Records) != 1 || string(req.Records[0].Data) != "x" || *req.Records[0].PartitionKey != "k" {
		t.Fatalf("decoded %+v, %v", req, ok)
	}
}
