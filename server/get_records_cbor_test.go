package server

import (
	"bytes"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestGetRecordsCBORContentLengthIsExact: a CBOR GetRecords answer declares
// its exact length and reads back, in CBOR, as the records it carries
// (the invalid UTF-8 of a key, two bytes, as two U+FFFD, as in JSON).
func TestGetRecordsCBORContentLengthIsExact(t *testing.T) {
	for name, o := range lengthTestOutputs() {
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
