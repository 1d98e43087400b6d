package sdkhttp

import (
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/kds"
)

// A GetRecords answer is built the same way from JSON and from CBOR: the
// builder below walks the answer's members through a wireReader, which
// reads one format's values.

// wireReader reads the values of one wire format. Each method reports false
// for anything of a shape the fast decoders leave to the SDK. Containers
// are read in loops, not through callbacks: a closure handed to an
// interface method escapes, which would cost allocations per record.
type wireReader interface {
	// open reads the start of an object (or an array): n is its number of
	// entries, or -1 when the format marks its end instead.
	open(object bool) (n int, ok bool)
	// more reads what comes before entry i of a container opened with n
	// entries, and reports whether there is one (after the container's end:
	// false).
	more(object bool, i, n int) (more, ok bool)
	key() ([]byte, bool) // an object's key, up to its value
	// skip reads a value of a member the SDK's model does not know.
	skip(depth int) bool
	string() (string, bool) // kept in the output's arena
	int64() (int64, bool)
	data() ([]byte, bool)         // into the output's slabs; never nil
	timestamp() (time.Time, bool) // as the SDK reads it from JSON
	recordsAhead() int            // a guess of the records left, for sizing
	output() *outputArena
	end() bool // nothing (but whitespace) is left
}

// members reads an object, calling member for each key with r at its
// value. (A closure per object: not for the records.)
func members(r wireReader, member func(key []byte) bool) bool {
	n, ok := r.open(true)
	for i := 0; ok; i++ {
		var more bool
		if more, ok = r.more(true, i, n); !more || !ok {
			break
		}
		var key []byte
		if key, ok = r.key(); ok {
			ok = member(key)
		}
	}
	return ok
}

// elements reads an array, calling elem with r at each element.
func elements(r wireReader, elem func() bool) bool {
	n, ok := r.open(false)
	for i := 0; ok; i++ {
		var more bool
		if more, ok = r.more(false, i, n); !more || !ok {
			break
		}
		ok = elem()
	}
	return ok
}

// outputArena holds what an answer's output points into: the records'
// data share slabs of slabSize (a record larger than that has its own),
// their strings one string, and their pointed-to strings one slice: a few
// allocations per answer instead of several per record, while a caller
// that keeps one record's Data keeps at most one slab alive, not the whole
// answer's data. With slabs (WithSlabs), the slabs are lent by its pool.
type outputArena struct {
	slab  []byte
	slabs *Slabs          // lends slabs; nil: they are made
	strs  strings.Builder // never rewritten, so slices of String() stay valid
	ptrs  []string        // what the records' *string point to
}

// keep copies s into the answer's string and returns it as a string.
func (a *outputArena) keep(s []byte) string {
	start := a.strs.Len()
	a.strs.Write(s)
	return a.strs.String()[start:]
}

// pointTo returns a pointer to s kept in the answer's slice of strings.
func (a *outputArena) pointTo(s string) *string {
	if len(a.ptrs) == cap(a.ptrs) {
		a.ptrs = make([]string, 0, max(16, 2*cap(a.ptrs))) // earlier pointers keep the old array
	}
	a.ptrs = append(a.ptrs, s)
	return &a.ptrs[len(a.ptrs)-1]
}

// room returns the free part of the current slab, at least need bytes
// long, starting a slab when the current one has less.
func (a *outputArena) room(need int) []byte {
	if a.slab == nil || cap(a.slab)-len(a.slab) < need { // never nil: empty data is "", not null
		if a.slabs != nil && need <= slabSize {
			a.slab = a.slabs.take()
		} else {
			a.slab = make([]byte, 0, max(slabSize, need))
		}
	}
	return a.slab[len(a.slab):cap(a.slab)]
}

// claim takes the first n bytes of room as a record's data.
func (a *outputArena) claim(n int) []byte {
	start := len(a.slab)
	a.slab = a.slab[:start+n]
	return a.slab[start : start+n : start+n]
}

// slabSize is the size of the slabs records' data is decoded into: large
// enough that a 10 MB answer takes a few dozen allocations, small enough
// that a kept record pins little.
const slabSize = 256 << 10

func stringPtr(r wireReader, dst **string) bool {
	s, ok := r.string()
	if ok {
		*dst = r.output().pointTo(s)
	}
	return ok
}

// decodeAnswer builds a GetRecords output from r into out and reports true,
// or reports false and leaves out as it was. Repeated members are left to
// the SDK; members it does not know are skipped, as the SDK skips them.
func decodeAnswer(r wireReader, out *kinesis.GetRecordsOutput) bool {
	var res kinesis.GetRecordsOutput
	if !members(r, func(key []byte) bool {
		switch string(key) {
		case "Records":
			return res.Records == nil && records(r, &res.Records)
		case "NextShardIterator":
			return res.NextShardIterator == nil && stringPtr(r, &res.NextShardIterator)
		case "MillisBehindLatest":
			if res.MillisBehindLatest != nil {
				return false
			}
			n, ok := r.int64()
			res.MillisBehindLatest = &n
			return ok
		case "ChildShards":
			return res.ChildShards == nil && childShards(r, &res.ChildShards)
		}
		return r.skip(0)
	}) || !r.end() {
		return false
	}
	out.Records, out.ChildShards = res.Records, res.ChildShards
	out.MillisBehindLatest, out.NextShardIterator = res.MillisBehindLatest, res.NextShardIterator
	return true
}

func records(r wireReader, dst *[]types.Record) bool {
	// The capacity is a guess, counted rather than grown into: the array's
	// declared length, else the member names ahead (in CBOR these may also
	// occur inside records' data), never more than GetRecords returns.
	entries, ok := r.open(false)
	n := entries
	if n < 0 {
		n = r.recordsAhead()
	}
	n = min(n, kds.MaxGetRecordsLimit)
	recs := make([]types.Record, 0, n)
	times := make([]time.Time, 0, n)
	a := r.output()
	a.ptrs = make([]string, 0, 2*n)
	a.strs.Grow(n * 80)
	for i := 0; ok; i++ {
		var more bool
		if more, ok = r.more(false, i, entries); !more || !ok {
			break
		}
		var rec types.Record
		if ok = record(r, &rec, &times); ok {
			recs = append(recs, rec)
		}
	}
	*dst = recs
	return ok
}

// record reads one record; its timestamp goes into *times.
func record(r wireReader, rec *types.Record, times *[]time.Time) bool {
	n, ok := r.open(true)
	for i := 0; ok; i++ {
		var more bool
		if more, ok = r.more(true, i, n); !more || !ok {
			return ok
		}
		var key []byte
		if key, ok = r.key(); !ok {
			return false
		}
		switch string(key) {
		case "SequenceNumber":
			ok = rec.SequenceNumber == nil && stringPtr(r, &rec.SequenceNumber)
		case "PartitionKey":
			ok = rec.PartitionKey == nil && stringPtr(r, &rec.PartitionKey)
		case "Data":
			if rec.Data != nil {
				return false
			}
			rec.Data, ok = r.data()
		case "EncryptionType":
			if rec.EncryptionType != "" {
				return false
			}
			var s string
			s, ok = r.string()
			rec.EncryptionType = types.EncryptionType(s)
			ok = ok && s != "" // "" would read as absent: a repeat goes unseen
		case "ApproximateArrivalTimestamp":
			if rec.ApproximateArrivalTimestamp != nil {
				return false
			}
			var t time.Time
			t, ok = r.timestamp()
			if len(*times) == cap(*times) {
				*times = make([]time.Time, 0, max(16, 2*cap(*times)))
			}
			*times = append(*times, t)
			rec.ApproximateArrivalTimestamp = &(*times)[len(*times)-1]
		default:
			ok = r.skip(0)
		}
	}
	return false
}

func childShards(r wireReader, dst *[]types.ChildShard) bool {
	shards := make([]types.ChildShard, 0)
	ok := elements(r, func() bool {
		var c types.ChildShard
		if !members(r, func(key []byte) bool {
			switch string(key) {
			case "ShardId":
				return c.ShardId == nil && stringPtr(r, &c.ShardId)
			case "ParentShards":
				if c.ParentShards != nil {
					return false
				}
				c.ParentShards = make([]string, 0, 2)
				return elements(r, func() bool {
					s, ok := r.string()
					c.ParentShards = append(c.ParentShards, s)
					return ok
				})
			case "HashKeyRange":
				if c.HashKeyRange != nil {
					return false
				}
				c.HashKeyRange = new(types.HashKeyRange)
				return members(r, func(key []byte) bool {
					switch string(key) {
					case "StartingHashKey":
						return c.HashKeyRange.StartingHashKey == nil && stringPtr(r, &c.HashKeyRange.StartingHashKey)
					case "EndingHashKey":
						return c.HashKeyRange.EndingHashKey == nil && stringPtr(r, &c.HashKeyRange.EndingHashKey)
					}
					return r.skip(0)
				})
			}
			return r.skip(0)
		}) {
			return false
		}
		shards = append(shards, c)
		return true
	})
	*dst = shards
	return ok
}
