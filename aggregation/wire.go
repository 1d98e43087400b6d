package aggregation

import (
	"crypto/md5"
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksp-project/ksp/kds"
)

// magic starts every aggregated record.
const magic = "\xF3\x89\x9A\xC2"

// overhead is the bytes of an aggregated record around its protobuf: the
// magic and the MD5 digest.
const overhead = len(magic) + md5.Size

// Field numbers of the AggregatedRecord protobuf.
const (
	fieldPartitionKeyTable    protowire.Number = 1 // AggregatedRecord: repeated string
	fieldExplicitHashKeyTable protowire.Number = 2 // AggregatedRecord: repeated string
	fieldRecords              protowire.Number = 3 // AggregatedRecord: repeated Record

	fieldPartitionKeyIndex    protowire.Number = 1 // Record: required uint64
	fieldExplicitHashKeyIndex protowire.Number = 2 // Record: optional uint64
	fieldData                 protowire.Number = 3 // Record: required bytes
	fieldTags                 protowire.Number = 4 // Record: repeated Tag

	fieldTagKey protowire.Number = 1 // Tag: required string
)

// The reasons an aggregate is malformed; UserRecord.Err wraps one of them.
var (
	// ErrChecksum: the record is too short to hold the magic and an MD5, or
	// the MD5 does not match the protobuf bytes.
	ErrChecksum = errors.New("aggregation: bad checksum")
	// ErrProtobuf: the protobuf is not a valid AggregatedRecord (truncated or
	// overlong varint, bad length, missing required field) or holds no records.
	ErrProtobuf = errors.New("aggregation: malformed protobuf")
	// ErrIndexRange: a record refers to a key-table entry that does not exist.
	ErrIndexRange = errors.New("aggregation: key index out of range")
	// ErrHashKey: an explicit hash key is not a decimal integer in 0…2^128−1.
	ErrHashKey = errors.New("aggregation: invalid explicit hash key")
)

// container is a decoded aggregate: its key tables, and its protobuf for
// reading the records in order with next.
type container struct {
	pks     []string
	ehks    []string
	ehkHash []kds.HashKey // ehks, parsed
	n       int           // records
	rest    []byte        // protobuf not yet read by next
}

// innerRecord is one Record message. ehk is -1 when absent.
type innerRecord struct {
	pk   int
	ehk  int
	data []byte
}

// decode checks an aggregated record (with magic and MD5) and reads its key
// tables; next then reads its records. Data aliases b; keys are copied.
func decode(b []byte) (container, error) {
	if len(b) < overhead || string(b[:len(magic)]) != magic {
		return container{}, fmt.Errorf("%w: %d bytes cannot hold the magic and an MD5", ErrChecksum, len(b))
	}
	pb := b[len(magic) : len(b)-md5.Size]
	if sum := md5.Sum(pb); string(sum[:]) != string(b[len(b)-md5.Size:]) {
		return container{}, fmt.Errorf("%w: MD5 %x of %d protobuf bytes does not match %x", ErrChecksum, sum, len(pb), b[len(b)-md5.Size:])
	}

	// Pass 1 checks the top-level wire format and counts table entries and
	// their bytes, so that pass 2 allocates once.
	var npk, nehk, keyBytes int
	c := container{rest: pb}
	for p := pb; len(p) > 0; {
		num, typ, n := protowire.ConsumeTag(p)
		if n < 0 {
			return container{}, wireErr("AggregatedRecord tag", n)
		}
		p = p[n:]
		if !isTopField(num, typ) {
			// Unknown fields, and known numbers with another wire type, are
			// skipped as protobuf parsers do.
			n = protowire.ConsumeFieldValue(num, typ, p)
			if n < 0 {
				return container{}, wireErr("field "+strconv.Itoa(int(num)), n)
			}
			p = p[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(p)
		if n < 0 {
			return container{}, wireErr("AggregatedRecord field "+strconv.Itoa(int(num)), n)
		}
		p = p[n:]
		switch num {
		case fieldPartitionKeyTable:
			npk++
			keyBytes += len(v)
		case fieldExplicitHashKeyTable:
			nehk++
			keyBytes += len(v)
		default:
			c.n++
		}
	}
	if c.n == 0 {
		return container{}, fmt.Errorf("%w: the aggregate holds no records", ErrProtobuf)
	}

	// Pass 2 fills the tables. All keys share one buffer that nothing else
	// references, so strings made over it are immutable.
	keys := make([]byte, 0, keyBytes)
	tables := make([]string, npk+nehk)
	c.pks, c.ehks = tables[:0:npk], tables[npk:npk]
	if nehk > 0 {
		c.ehkHash = make([]kds.HashKey, 0, nehk)
	}
	for p := pb; len(p) > 0; {
		num, typ, n := protowire.ConsumeTag(p)
		p = p[n:]
		if !isTopField(num, typ) || num == fieldRecords {
			p = p[protowire.ConsumeFieldValue(num, typ, p):]
			continue
		}
		v, n := protowire.ConsumeBytes(p)
		p = p[n:]
		s := intern(&keys, v)
		if num == fieldPartitionKeyTable {
			c.pks = append(c.pks, s)
			continue
		}
		h, err := kds.ParseHashKey(s)
		if err != nil {
			return container{}, fmt.Errorf("%w: table entry %d: %v", ErrHashKey, len(c.ehks), err)
		}
		c.ehks = append(c.ehks, s)
		c.ehkHash = append(c.ehkHash, h)
	}
	return c, nil
}

// next reads the next record; ok is false after the last one. The wire
// format around records was checked by decode.
func (c *container) next() (r innerRecord, ok bool, err error) {
	for len(c.rest) > 0 {
		num, typ, n := protowire.ConsumeTag(c.rest)
		c.rest = c.rest[n:]
		if num != fieldRecords || typ != protowire.BytesType {
			c.rest = c.rest[protowire.ConsumeFieldValue(num, typ, c.rest):]
			continue
		}
		v, n := protowire.ConsumeBytes(c.rest)
		c.rest = c.rest[n:]
		rec, err := decodeRecord(v, len(c.pks), len(c.ehks))
		return rec, err == nil, err
	}
	return innerRecord{}, false, nil
}

func isTopField(num protowire.Number, typ protowire.Type) bool {
	return typ == protowire.BytesType && num >= fieldPartitionKeyTable && num <= fieldRecords
}

// decodeRecord parses one Record message and checks its indexes against the
// table sizes.
func decodeRecord(b []byte, npk, nehk int) (innerRecord, error) {
	r := innerRecord{pk: -1, ehk: -1}
	var pk, ehk uint64
	var hasPK, hasEHK, hasData bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, wireErr("Record tag", n)
		}
		b = b[n:]
		switch {
		case num == fieldPartitionKeyIndex && typ == protowire.VarintType:
			pk, n = protowire.ConsumeVarint(b)
			hasPK = true
		case num == fieldExplicitHashKeyIndex && typ == protowire.VarintType:
			ehk, n = protowire.ConsumeVarint(b)
			hasEHK = true
		case num == fieldData && typ == protowire.BytesType:
			r.data, n = protowire.ConsumeBytes(b)
			hasData = true
		case num == fieldTags && typ == protowire.BytesType:
			var tag []byte
			tag, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				if err := checkTag(tag); err != nil {
					return r, err
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return r, wireErr("Record field "+strconv.Itoa(int(num)), n)
		}
		b = b[n:]
	}
	switch {
	case !hasPK:
		return r, fmt.Errorf("%w: Record has no partition_key_index", ErrProtobuf)
	case !hasData:
		return r, fmt.Errorf("%w: Record has no data", ErrProtobuf)
	case pk >= uint64(npk):
		return r, fmt.Errorf("%w: partition_key_index %d, table has %d keys", ErrIndexRange, pk, npk)
	case hasEHK && ehk >= uint64(nehk):
		return r, fmt.Errorf("%w: explicit_hash_key_index %d, table has %d keys", ErrIndexRange, ehk, nehk)
	}
	r.pk = int(pk)
	if hasEHK {
		r.ehk = int(ehk)
	}
	return r, nil
}

// checkTag validates a Tag message, which KPL and KCL ignore but a protobuf
// parser still requires to carry a key.
func checkTag(b []byte) error {
	hasKey := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireErr("Tag tag", n)
		}
		b = b[n:]
		if num == fieldTagKey && typ == protowire.BytesType {
			hasKey = true
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return wireErr("Tag field "+strconv.Itoa(int(num)), n)
		}
		b = b[n:]
	}
	if !hasKey {
		return fmt.Errorf("%w: Tag has no key", ErrProtobuf)
	}
	return nil
}

// intern copies v into *keys, which never reallocates (its capacity is the
// sum of all keys), and returns a string over the copy.
func intern(keys *[]byte, v []byte) string {
	if len(v) == 0 {
		return ""
	}
	start := len(*keys)
	*keys = append(*keys, v...)
	return unsafe.String(&(*keys)[start], len(v))
}

func wireErr(what string, code int) error {
	return fmt.Errorf("%w: %s: %v", ErrProtobuf, what, protowire.ParseError(code))
}
