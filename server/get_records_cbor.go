package server

import (
	"io"
	"math"

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
	writeCBOR(io.Writer) error
}

// writeCBOR streams the answer through a small buffer, as writeJSON does.
func (o *getRecordsOutput) writeCBOR(w io.Writer) error {
	return o.writePieces(w, o.appendCBORStart, o.appendCBORRecord, "")
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
	b = cborwire.AppendText(b, r.PartitionKey)
	b = cborwire.AppendText(b, "SequenceNumber")
	if o.seq.p == nil {
		o.seq = newSeqCursor(&o.sh.seq)
	}
	// The digits' count is known once they are written: a one-byte length
	// is reserved (ksp's sequence numbers have 56 digits), and the digits
	// are moved when the number needs another length's form.
	head := len(b)
	b = append(b, cborwire.Text|24, 0)
	b = o.seq.append(b, r.Position)
	n := len(b) - head - 2
	switch {
	case n < 24:
		copy(b[head+1:], b[head+2:])
		b[head] = cborwire.Text | byte(n)
		return b[:len(b)-1]
	case n > math.MaxUint8:
		b = append(b, 0)
		copy(b[head+3:], b[head+2:])
		b[head], b[head+1], b[head+2] = cborwire.Text|25, byte(n>>8), byte(n)
		return b
	}
	b[head+1] = byte(n)
	return b
}
