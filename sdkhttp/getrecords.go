package sdkhttp

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/internal/jsonwire"
)

// decodeGetRecords decodes a GetRecords answer of the shape Kinesis and ksp
// write into out and reports true, or reports false and leaves out as it
// was: escapes of UTF-16 surrogates, nulls, repeated members, numbers out
// of range and bad base64 are left to the SDK's decoder. Members the SDK does not
// know are skipped, as the SDK skips them.
//
// The records' data share slabs of slabSize (a record larger than that has
// its own), their strings one string, and their pointed-to strings and times
// one slice each: a few allocations per answer instead of several per
// record, while a caller that keeps one record's Data keeps at most one
// slab alive, not the whole answer's data. With slabs (WithSlabs), the
// slabs are lent by its pool.
func decodeGetRecords(body []byte, out *kinesis.GetRecordsOutput, slabs *Slabs) bool {
	d := getRecordsDecoder{p: jsonwire.Scanner{B: body}, slabs: slabs}
	var res kinesis.GetRecordsOutput
	if !d.object(func(key []byte) bool {
		switch string(key) {
		case "Records":
			return res.Records == nil && d.records(&res.Records)
		case "NextShardIterator":
			return res.NextShardIterator == nil && d.stringPtr(&res.NextShardIterator)
		case "MillisBehindLatest":
			if res.MillisBehindLatest != nil {
				return false
			}
			n, ok := d.int64()
			res.MillisBehindLatest = &n
			return ok
		case "ChildShards":
			return res.ChildShards == nil && d.childShards(&res.ChildShards)
		}
		return d.skip(0)
	}) || !d.p.End() {
		return false
	}
	out.Records, out.ChildShards = res.Records, res.ChildShards
	out.MillisBehindLatest, out.NextShardIterator = res.MillisBehindLatest, res.NextShardIterator
	return true
}

type getRecordsDecoder struct {
	p       jsonwire.Scanner
	slab    []byte          // the records' data
	slabs   *Slabs          // lends slabs; nil: they are made
	strs    strings.Builder // the strings; never rewritten, so slices of String() stay valid
	ptrs    []string        // what the records' *string point to
	scratch []byte          // a string being unescaped
}

// object reads an object, calling member for each key with the scanner at
// its value.
func (d *getRecordsDecoder) object(member func(key []byte) bool) bool {
	if !d.p.Consume('{') {
		return false
	}
	for i := 0; !d.p.Consume('}'); i++ {
		if i > 0 && !d.p.Consume(',') {
			return false
		}
		key, ok := d.p.Str()
		if !ok || !d.p.Consume(':') || !member(key) {
			return false
		}
	}
	return true
}

// array reads an array, calling elem with the scanner at each element.
func (d *getRecordsDecoder) array(elem func() bool) bool {
	if !d.p.Consume('[') {
		return false
	}
	for i := 0; !d.p.Consume(']'); i++ {
		if i > 0 && !d.p.Consume(',') {
			return false
		}
		if !elem() {
			return false
		}
	}
	return true
}

// skip reads a value of a member the SDK's model does not know (Kinesis
// may add members), as the SDK skips it. Only the plainest JSON is taken:
// strings without escapes, nulls, numbers, booleans, and objects and arrays
// of those up to a small depth; anything else is left to the SDK.
func (d *getRecordsDecoder) skip(depth int) bool {
	if depth > 16 {
		return false
	}
	c, ok := d.p.Peek()
	if !ok {
		return false
	}
	switch {
	case c == '"':
		_, ok := d.p.Str()
		return ok
	case c == '{':
		return d.object(func([]byte) bool { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() bool { return d.skip(depth + 1) })
	case c == '-' || c >= '0' && c <= '9':
		_, ok := d.p.Number()
		return ok
	}
	for _, lit := range []string{"null", "true", "false"} {
		if bytes.HasPrefix(d.p.B[d.p.I:], []byte(lit)) {
			d.p.I += len(lit)
			return true
		}
	}
	return false
}

func (d *getRecordsDecoder) string() (string, bool) {
	var ok bool
	if d.scratch, ok = d.p.AppendStr(d.scratch[:0]); !ok {
		return "", false
	}
	start := d.strs.Len()
	d.strs.Write(d.scratch)
	return d.strs.String()[start:], true
}

func (d *getRecordsDecoder) stringPtr(dst **string) bool {
	s, ok := d.string()
	if !ok {
		return false
	}
	if len(d.ptrs) == cap(d.ptrs) {
		d.ptrs = make([]string, 0, max(16, 2*cap(d.ptrs))) // earlier pointers keep the old array
	}
	d.ptrs = append(d.ptrs, s)
	*dst = &d.ptrs[len(d.ptrs)-1]
	return true
}

func (d *getRecordsDecoder) int64() (int64, bool) {
	v, ok := d.p.Number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

func (d *getRecordsDecoder) records(dst *[]types.Record) bool {
	// The capacity is a guess, counted rather than grown into.
	n := bytes.Count(d.p.B[d.p.I:], []byte(`"SequenceNumber"`))
	recs := make([]types.Record, 0, n)
	times := make([]time.Time, 0, n)
	d.ptrs = make([]string, 0, 2*n)
	d.strs.Grow(n * 80)
	d.slab = nil
	ok := d.array(func() bool {
		var r types.Record
		if !d.object(func(key []byte) bool {
			switch string(key) {
			case "SequenceNumber":
				return r.SequenceNumber == nil && d.stringPtr(&r.SequenceNumber)
			case "PartitionKey":
				return r.PartitionKey == nil && d.stringPtr(&r.PartitionKey)
			case "Data":
				return r.Data == nil && d.data(&r.Data)
			case "EncryptionType":
				if r.EncryptionType != "" {
					return false
				}
				s, ok := d.string()
				r.EncryptionType = types.EncryptionType(s)
				return ok && s != "" // "" would read as absent: a repeat goes unseen
			case "ApproximateArrivalTimestamp":
				if r.ApproximateArrivalTimestamp != nil {
					return false
				}
				t, ok := d.epochSeconds()
				if len(times) == cap(times) {
					times = make([]time.Time, 0, max(16, 2*cap(times)))
				}
				times = append(times, t)
				r.ApproximateArrivalTimestamp = &times[len(times)-1]
				return ok
			}
			return d.skip(0)
		}) {
			return false
		}
		recs = append(recs, r)
		return true
	})
	*dst = recs
	return ok
}

// data decodes a base64 string into the current slab, or a new one when it
// does not fit.
func (d *getRecordsDecoder) data(dst *[]byte) bool {
	v, ok := d.p.RawStr()
	if !ok {
		return false
	}
	need := base64.StdEncoding.DecodedLen(len(v))
	if d.slab == nil || cap(d.slab)-len(d.slab) < need { // never nil: empty data is "", not null
		if d.slabs != nil && need <= slabSize {
			d.slab = d.slabs.take()
		} else {
			d.slab = make([]byte, 0, max(slabSize, need))
		}
	}
	start := len(d.slab)
	n, err := base64.StdEncoding.Decode(d.slab[start:cap(d.slab)], v)
	if err != nil {
		return false
	}
	d.slab = d.slab[:start+n]
	*dst = d.slab[start : start+n : start+n]
	return true
}

// slabSize is the size of the slabs records' data is decoded into: large
// enough that a 10 MB answer takes a few dozen allocations, small enough
// that a kept record pins little.
const slabSize = 256 << 10

// epochSeconds reads a timestamp as the SDK does: seconds as a JSON number,
// truncated to milliseconds after rounding seconds × 1000 to a float64.
func (d *getRecordsDecoder) epochSeconds() (time.Time, bool) {
	v, ok := d.p.Number()
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	ms := math.Trunc(f * 1e3)
	// Leave the edges (where the SDK's arithmetic overflows) to the SDK.
	if err != nil || math.Abs(ms) > 1<<53 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ms)*1e6).UTC(), true
}

func (d *getRecordsDecoder) childShards(dst *[]types.ChildShard) bool {
	shards := make([]types.ChildShard, 0)
	ok := d.array(func() bool {
		var c types.ChildShard
		if !d.object(func(key []byte) bool {
			switch string(key) {
			case "ShardId":
				return c.ShardId == nil && d.stringPtr(&c.ShardId)
			case "ParentShards":
				if c.ParentShards != nil {
					return false
				}
				c.ParentShards = make([]string, 0, 2)
				return d.array(func() bool {
					s, ok := d.string()
					c.ParentShards = append(c.ParentShards, s)
					return ok
				})
			case "HashKeyRange":
				if c.HashKeyRange != nil {
					return false
				}
				c.HashKeyRange = new(types.HashKeyRange)
				return d.object(func(key []byte) bool {
					switch string(key) {
					case "StartingHashKey":
						return c.HashKeyRange.StartingHashKey == nil && d.stringPtr(&c.HashKeyRange.StartingHashKey)
					case "EndingHashKey":
						return c.HashKeyRange.EndingHashKey == nil && d.stringPtr(&c.HashKeyRange.EndingHashKey)
					}
					return d.skip(0)
				})
			}
			return d.skip(0)
		}) {
			return false
		}
		shards = append(shards, c)
		return true
	})
	*dst = shards
	return ok
}
