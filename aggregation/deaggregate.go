package aggregation

import (
	"crypto/md5"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksp-project/ksp/kds"
)

// KinesisRecord is a record as GetRecords or SubscribeToShard return it.
type KinesisRecord struct {
	Data                        []byte
	PartitionKey                string
	SequenceNumber              string
	ApproximateArrivalTimestamp time.Time
}

// UserRecord is one user record taken out of a Kinesis record. Records taken
// out of one Kinesis record share its SequenceNumber and arrival time;
// (SequenceNumber, SubSequenceNumber) identifies a user record for
// checkpoints.
type UserRecord struct {
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key in decimal, ""
	// when it has none. It is always "" for a passed-through record, as
	// Kinesis does not return the key it was put with.
	ExplicitHashKey string
	// Data aliases the Kinesis record's Data.
	Data                        []byte
	SequenceNumber              string
	SubSequenceNumber           int64 // position in the aggregate; 0 when passed through
	ApproximateArrivalTimestamp time.Time
	// Aggregated reports that the record came out of an aggregate.
	Aggregated bool
	// Err is non-nil when the Kinesis record carried the aggregate magic but
	// was not a valid aggregate, and was passed through whole as this one
	// record. It wraps ErrChecksum, ErrProtobuf, ErrIndexRange or ErrHashKey.
	Err error
}

// Deaggregate appends to dst the user records that rec carries, in order, and
// returns the extended slice. It appends at least one record: a record that
// is not an aggregate, or is a malformed one, is passed through as one.
func Deaggregate(dst []UserRecord, rec KinesisRecord) []UserRecord {
	dst, _ = deaggregate(dst, &rec, nil)
	return dst
}

// DeaggregateShard is Deaggregate for a record read from a shard that owns
// hashRange: it drops the user records of an aggregate whose effective hash
// key (the explicit hash key, else the MD5 of the partition key) lies outside
// hashRange, and returns how many it dropped. Passed-through records are
// never dropped.
//
// The filter keeps a consumer from seeing records a producer routed by a
// stale shard map; those records are nowhere else in the stream, so dropping
// them loses them. The KCL drops the whole aggregate when any of its records
// is outside the range; DeaggregateShard drops only those records, and keeps
// the sub-sequence numbers of the others.
func DeaggregateShard(dst []UserRecord, rec KinesisRecord, hashRange kds.HashKeyRange) ([]UserRecord, int) {
	if hashRange == (kds.HashKeyRange{End: kds.MaxHashKey}) {
		return deaggregate(dst, &rec, nil) // the whole key space: no key can lie outside
	}
	return deaggregate(dst, &rec, &hashRange)
}

// Count returns how many user records Deaggregate takes out of a Kinesis
// record's data at most, reading only the protobuf's framing (no MD5, no
// key tables): for sizing a slice before deaggregating a batch. It is
// exact for a valid aggregate, and at least 1. An entry too short to hold a
// user record's two required fields is not counted, so a malformed
// aggregate of empty entries cannot make the caller size a slice of
// hundreds of thousands of records per megabyte.
func Count(data []byte) int {
	if len(data) < overhead || string(data[:len(magic)]) != magic {
		return 1
	}
	n := 0
	for p := data[len(magic) : len(data)-md5.Size]; len(p) > 0; {
		num, typ, k := protowire.ConsumeTag(p)
		if k < 0 {
			break
		}
		p = p[k:]
		if num == fieldRecords && typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(p)
			if k < 0 {
				break
			}
			p = p[k:]
			if len(v) >= minRecordMessage {
				n++
			}
			continue
		}
		if k = protowire.ConsumeFieldValue(num, typ, p); k < 0 {
			break
		}
		p = p[k:]
	}
	return max(n, 1)
}

// minRecordMessage is the shortest encoding of a user record: the
// partition key index (a tag and a one-byte varint) and the data (a tag and
// a zero length).
const minRecordMessage = 4

func deaggregate(dst []UserRecord, rec *KinesisRecord, hashRange *kds.HashKeyRange) ([]UserRecord, int) {
	if len(rec.Data) < len(magic) || string(rec.Data[:len(magic)]) != magic {
		return append(dst, passThrough(rec, nil)), 0
	}
	c, err := decode(rec.Data)
	if err != nil {
		return append(dst, passThrough(rec, err)), 0
	}
	// A partition key is hashed once per table entry, and only when a
	// record routed by it (one without an explicit hash key) comes.
	var pkHash []kds.HashKey
	var hashed []bool
	if hashRange != nil {
		pkHash, hashed = make([]kds.HashKey, len(c.pks)), make([]bool, len(c.pks))
	}
	start, dropped := len(dst), 0
	// Room for the records, bounded: c.n counts records not yet validated.
	// A short dst at least doubles: slices.Grow by exactly what is needed
	// grows a long one by a quarter, copying a consumer's batch of many
	// aggregates over and over.
	if need := min(c.n, 1024); cap(dst)-len(dst) < need {
		dst = slices.Grow(dst, max(need, len(dst)))
	}
	for i := int64(0); ; i++ {
		r, ok, err := c.next()
		if err != nil {
			// Nothing of a malformed aggregate is delivered but the whole.
			clear(dst[start:])
			return append(dst[:start], passThrough(rec, fmt.Errorf("record %d: %w", i, err))), 0
		}
		if !ok {
			return dst, dropped
		}
		ehk := ""
		if r.ehk >= 0 {
			ehk = c.ehks[r.ehk]
		}
		if hashRange != nil {
			var h kds.HashKey
			switch {
			case r.ehk >= 0:
				h = c.ehkHash[r.ehk]
			case hashed[r.pk]:
				h = pkHash[r.pk]
			default:
				h = kds.HashPartitionKey(c.pks[r.pk])
				pkHash[r.pk], hashed[r.pk] = h, true
			}
			if !hashRange.Contains(h) {
				dropped++
				continue
			}
		}
		dst = append(dst, UserRecord{
			PartitionKey:                c.pks[r.pk],
			ExplicitHashKey:             ehk,
			Data:                        r.data,
			SequenceNumber:              rec.SequenceNumber,
			SubSequenceNumber:           i,
			ApproximateArrivalTimestamp: rec.ApproximateArrivalTimestamp,
			Aggregated:                  true,
		})
	}
}

func passThrough(rec *KinesisRecord, err error) UserRecord {
	return UserRecord{
		PartitionKey:                rec.PartitionKey,
		Data:                        rec.Data,
		SequenceNumber:              rec.SequenceNumber,
		ApproximateArrivalTimestamp: rec.ApproximateArrivalTimestamp,
		Err:                         err,
	}
}
