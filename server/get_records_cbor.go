package server

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ksp-project/ksp/internal/cborwire"
)

// The GetRecords answer in CBOR, written by hand as the JSON one is: the
// records' data travel as byte strings, so neither side base64-codes them.
// The shape is the JSON encoder's (ChildShards present when known, even
// empty; timestamps as tag 1 around epoch milliseconds, as the Java SDK
// reads and writes them).

// cborStreamer is implemented by responses with a hand-written CBOR
// encoder, written in pieces so a 10 MiB answer never exists whole.
type cborStreamer interface {
	writeCBOR(http.ResponseWriter) error
}

// writeCBOR writes the answer as writeJSON does: in pieces, after a
// Content-Length of its exact size.
func (o *getRecordsOutput) writeCBOR(w http.ResponseWriter) error {
	return o.writePieces(w, o.appendCBORStart, o.cborRecordsLen, o.appendCBORRecord, "")
}

// cborRecordLenFixed is the length of a record's CBOR without its values'
// arguments and bytes: the map, the keys, the tag, the sequence number.
var cborRecordLenFixed = 1 + len(cborwire.AppendText(nil, "ApproximateArrivalTimestamp")) + 1 +
	len(cborwire.AppendText(nil, "Data")) + len(cborwire.AppendText(nil, "PartitionKey")) +
	len(cborwire.AppendText(nil, "SequenceNumber")) + cborwire.HeadLen(seqLen) + seqLen

// cborRecordsLen is the exact length of what appendCBORRecord appends for
// every record.
func (o *getRecordsOutput) cborRecordsLen() int {
	n := 0
	for i := range o.records {
		r := &o.records[i]
		key := cborText(r.PartitionKey)
		n += cborRecordLenFixed + cborwire.IntLen(r.ArrivalMilli) +
			cborwire.HeadLen(uint64(len(r.Data))) + len(r.Data) + cborwire.HeadLen(uint64(len(key))) + len(key)
	}
	return n
}

// cborText is s as a CBOR text string may carry it, valid UTF-8: each byte
// of an invalid sequence becomes U+FFFD, as in the JSON answer.
func cborText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// appendCBORStart appends everything before the first record.
func (o *getRecordsOutput) appendCBORStart(b []byte) []byte {
	members := uint64(2) // MillisBehindLatest, Records
	if o.childShards != nil {
		members++
	}
	if o.next != nil {
		members++
	}
	b = cborwire.AppendHead(b, cborwire.Map, members)
	if o.childShards != nil {
		b = cborwire.AppendText(b, "ChildShards")
		b = cborwire.AppendHead(b, cborwire.Array, uint64(len(o.childShards)))
		for _, cs := range o.childShards {
			b = cborwire.AppendHead(b, cborwire.Map, 3)
			b = cborwire.AppendText(b, "HashKeyRange")
			b = cborwire.AppendHead(b, cborwire.Map, 2)
			b = cborwire.AppendText(b, "EndingHashKey")
			b = cborwire.AppendText(b, cs.HashKeyRange.EndingHashKey)
			b = cborwire.AppendText(b, "StartingHashKey")
			b = cborwire.AppendText(b, cs.HashKeyRange.StartingHashKey)
			b = cborwire.AppendText(b, "ParentShards")
			b = cborwire.AppendHead(b, cborwire.Array, uint64(len(cs.ParentShards)))
			for _, p := range cs.ParentShards {
				b = cborwire.AppendText(b, p)
			}
			b = cborwire.AppendText(b, "ShardId")
			b = cborwire.AppendText(b, cs.ShardId)
		}
	}
	b = cborwire.AppendText(b, "MillisBehindLatest")
	b = cborwire.AppendInt(b, o.behind)
	if o.next != nil {
		b = cborwire.AppendText(b, "NextShardIterator")
		b = cborwire.AppendText(b, *o.next)
	}
	b = cborwire.AppendText(b, "Records")
	return cborwire.AppendHead(b, cborwire.Array, uint64(len(o.records)))
}

// appendCBORRecord appends record i.
func (o *getRecordsOutput) appendCBORRecord(b []byte, i int) []byte {
	r := &o.records[i]
	b = cborwire.AppendHead(b, cborwire.Map, 4)
	b = cborwire.AppendText(b, "ApproximateArrivalTimestamp")
	b = cborwire.AppendHead(b, cborwire.Tag, 1)
	b = cborwire.AppendInt(b, r.ArrivalMilli)
	b = cborwire.AppendText(b, "Data")
	b = cborwire.AppendHead(b, cborwire.Bytes, uint64(len(r.Data)))
	b = append(b, r.Data...)
	b = cborwire.AppendText(b, "PartitionKey")
	b = cborwire.AppendText(b, cborText(r.PartitionKey))
	b = cborwire.AppendText(b, "SequenceNumber")
	if o.seq.p == nil {
		o.seq = newSeqCursor(&o.sh.seq)
	}
	b = cborwire.AppendHead(b, cborwire.Text, seqLen) // every sequence number has seqLen digits
	return o.seq.append(b, r.Position)
}
