package aggregation

import (
	"crypto/md5"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksp-project/ksp/kds"
)

// DefaultMaxSize is the default limit of an aggregated container, the KPL's
// AggregationMaxSize.
const DefaultMaxSize = 51200

// AggregatePartitionKey is the partition key of an aggregated container; its
// ExplicitHashKey routes it.
const AggregatePartitionKey = "a"

var (
	// ErrFull: the record does not fit in the current container. Build the
	// container, then add the record again.
	ErrFull = errors.New("aggregation: container full")
	// ErrTooLarge: the record does not fit even alone, raw.
	ErrTooLarge = errors.New("aggregation: record too large")
	// ErrInvalidRecord: the partition key or explicit hash key is not one
	// Kinesis accepts.
	ErrInvalidRecord = errors.New("aggregation: invalid record")
)

// Option configures an Aggregator.
type Option interface{ apply(*Aggregator) }

type optionFunc func(*Aggregator)

func (f optionFunc) apply(a *Aggregator) { f(a) }

// MaxSize limits a container of two or more user records: its data plus its
// partition key stay within n bytes. Default [DefaultMaxSize] (51200, the
// KPL's AggregationMaxSize). Larger containers mean fewer Kinesis records
// but a longer wait for the last user record in each.
func MaxSize(n int) Option { return optionFunc(func(a *Aggregator) { a.maxSize = n }) }

// MaxRecordSize is the stream's limit on one Kinesis record, data plus
// partition key, which every container respects, including a raw single
// record. Default [kds.DefaultMaxRecordSize] (1 MiB); pass the stream's
// MaxRecordSize when it was raised.
func MaxRecordSize(n int) Option { return optionFunc(func(a *Aggregator) { a.maxRecordSize = n }) }

// Aggregator builds one container at a time from user records. The zero
// value is ready to use with the default limits. An Aggregator is not safe
// for concurrent use; give each shard its own.
//
// A container of one user record is raw: its data and keys are the record's
// own, as the KPL sends it. Any other container is aggregated: the magic,
// the protobuf and its MD5, under AggregatePartitionKey, with the first user
// record's effective hash key as ExplicitHashKey. One exception: a lone
// record whose data starts with the magic is aggregated too, so consumers
// cannot mistake its data for an aggregate.
//
// Add copies the data, so the caller may reuse its buffers at once.
type Aggregator struct {
	maxSize, maxRecordSize int

	pkIndex  map[string]uint64 // partition key → index in its table
	ehkIndex map[string]uint64
	pkTable  []byte // encoded field 1 entries
	ehkTable []byte // encoded field 2 entries
	records  []byte // encoded field 3 entries
	n        int

	// The first record, sent raw when it stays alone.
	firstPK, firstEHK string
	firstData         [2]int // offsets of its data in records
	firstHasMagic     bool   // its data would read as an aggregate if sent raw
}

// NewAggregator returns an Aggregator with the options applied.
func NewAggregator(opts ...Option) (*Aggregator, error) {
	a := &Aggregator{maxSize: DefaultMaxSize, maxRecordSize: kds.DefaultMaxRecordSize}
	for _, o := range opts {
		o.apply(a)
	}
	if a.maxSize <= 0 {
		return nil, fmt.Errorf("aggregation: MaxSize %d must be positive", a.maxSize)
	}
	if a.maxRecordSize <= 0 || a.maxRecordSize > kds.MaxMaxRecordSizeKiB<<10 {
		return nil, fmt.Errorf("aggregation: MaxRecordSize %d must be in 1…%d", a.maxRecordSize, kds.MaxMaxRecordSizeKiB<<10)
	}
	return a, nil
}

// Len is the number of user records in the container.
func (a *Aggregator) Len() int { return a.n }

// Size is the exact length of the container's data: 0 when empty, the user
// record's data when raw, the aggregated record otherwise.
func (a *Aggregator) Size() int {
	switch {
	case a.n == 0:
		return 0
	case a.raw():
		return a.firstData[1] - a.firstData[0]
	}
	return a.aggregatedSize()
}

// PutSize is what the container counts toward the Kinesis record size limit
// and the shard's write throughput: Size plus the partition key.
func (a *Aggregator) PutSize() int {
	switch {
	case a.n == 0:
		return 0
	case a.raw():
		return a.Size() + len(a.firstPK)
	}
	return a.aggregatedSize() + len(AggregatePartitionKey)
}

// raw reports whether the container is sent as its one user record. A
// record whose data starts with the aggregate magic is sent aggregated even
// alone, so that consumers cannot mistake it for an aggregate.
func (a *Aggregator) raw() bool { return a.n == 1 && !a.firstHasMagic }

func (a *Aggregator) aggregatedSize() int {
	return overhead + len(a.pkTable) + len(a.ehkTable) + len(a.records)
}

// limits returns the largest PutSize of an aggregated container and of a
// raw single record.
func (a *Aggregator) limits() (aggregated, raw int) {
	maxSize, maxRecordSize := a.maxSize, a.maxRecordSize
	if maxSize == 0 { // zero value
		maxSize = DefaultMaxSize
	}
	if maxRecordSize == 0 {
		maxRecordSize = kds.DefaultMaxRecordSize
	}
	return min(maxSize, maxRecordSize), maxRecordSize
}

// Add appends a user record. explicitHashKey is "" for none, else a decimal
// hash key that routes the record instead of the partition key's MD5.
//
// It returns ErrFull when the container would outgrow its limit (build it,
// then add again), ErrTooLarge when the record alone exceeds MaxRecordSize,
// and ErrInvalidRecord for keys Kinesis would refuse. On error nothing is
// added. A record that does not fit MaxSize aggregated but fits
// MaxRecordSize is accepted into an empty Aggregator, and built raw.
func (a *Aggregator) Add(partitionKey, explicitHashKey string, data []byte) error {
	// Count characters only when the bytes could exceed the limit.
	if len(partitionKey) == 0 || (len(partitionKey) > kds.MaxPartitionKeyLength && utf8.RuneCountInString(partitionKey) > kds.MaxPartitionKeyLength) {
		return fmt.Errorf("%w: partition key of %d bytes must have 1…%d characters", ErrInvalidRecord, len(partitionKey), kds.MaxPartitionKeyLength)
	}
	if a.pkIndex == nil {
		a.pkIndex = make(map[string]uint64)
		a.ehkIndex = make(map[string]uint64)
	}

	// Size the record before adding anything, so a refusal leaves no trace.
	pkIdx, pkKnown := a.pkIndex[partitionKey]
	if !pkKnown {
		pkIdx = uint64(len(a.pkIndex))
	}
	var ehkIdx uint64
	ehkKnown := true
	if explicitHashKey != "" {
		ehkIdx, ehkKnown = a.ehkIndex[explicitHashKey]
		if !ehkKnown {
			if _, err := kds.ParseHashKey(explicitHashKey); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidRecord, err)
			}
			ehkIdx = uint64(len(a.ehkIndex))
		}
	}
	inner := 1 + protowire.SizeVarint(pkIdx) + 1 + protowire.SizeBytes(len(data))
	if explicitHashKey != "" {
		inner += 1 + protowire.SizeVarint(ehkIdx)
	}
	aggLimit, rawLimit := a.limits()
	hasMagic := len(data) >= len(magic) && string(data[:len(magic)]) == magic
	switch {
	case a.n == 0 && !hasMagic:
		if raw := len(data) + len(partitionKey); raw > rawLimit {
			return fmt.Errorf("%w: %d bytes of data and partition key, limit %d", ErrTooLarge, raw, rawLimit)
		}
	default:
		grow := 1 + protowire.SizeBytes(inner)
		if !pkKnown {
			grow += 1 + protowire.SizeBytes(len(partitionKey))
		}
		if !ehkKnown {
			grow += 1 + protowire.SizeBytes(len(explicitHashKey))
		}
		size := a.aggregatedSize() + grow + len(AggregatePartitionKey)
		if a.n == 0 && size > rawLimit {
			return fmt.Errorf("%w: %d bytes aggregated alone (its data starts with the aggregate magic), limit %d", ErrTooLarge, size, rawLimit)
		}
		if a.n > 0 && size > aggLimit {
			return ErrFull
		}
	}

	if !pkKnown {
		a.pkIndex[partitionKey] = pkIdx
		a.pkTable = protowire.AppendTag(a.pkTable, fieldPartitionKeyTable, protowire.BytesType)
		a.pkTable = protowire.AppendString(a.pkTable, partitionKey)
	}
	if !ehkKnown {
		a.ehkIndex[explicitHashKey] = ehkIdx
		a.ehkTable = protowire.AppendTag(a.ehkTable, fieldExplicitHashKeyTable, protowire.BytesType)
		a.ehkTable = protowire.AppendString(a.ehkTable, explicitHashKey)
	}
	r := protowire.AppendTag(a.records, fieldRecords, protowire.BytesType)
	r = protowire.AppendVarint(r, uint64(inner))
	r = protowire.AppendTag(r, fieldPartitionKeyIndex, protowire.VarintType)
	r = protowire.AppendVarint(r, pkIdx)
	if explicitHashKey != "" {
		r = protowire.AppendTag(r, fieldExplicitHashKeyIndex, protowire.VarintType)
		r = protowire.AppendVarint(r, ehkIdx)
	}
	r = protowire.AppendTag(r, fieldData, protowire.BytesType)
	r = protowire.AppendVarint(r, uint64(len(data)))
	if a.n == 0 {
		a.firstPK, a.firstEHK = partitionKey, explicitHashKey
		a.firstData = [2]int{len(r), len(r) + len(data)}
		a.firstHasMagic = hasMagic
	}
	a.records = append(r, data...)
	a.n++
	return nil
}

// AppendEncoded appends the container's data to dst: nothing when empty, the
// user record's data when raw, the aggregated record otherwise. It appends
// exactly Size bytes and leaves the container as it is.
func (a *Aggregator) AppendEncoded(dst []byte) []byte {
	switch {
	case a.n == 0:
		return dst
	case a.raw():
		return append(dst, a.records[a.firstData[0]:a.firstData[1]]...)
	}
	dst = slices.Grow(dst, a.aggregatedSize())
	dst = append(dst, magic...)
	start := len(dst)
	dst = append(dst, a.pkTable...)
	dst = append(dst, a.ehkTable...)
	dst = append(dst, a.records...)
	sum := md5.Sum(dst[start:])
	return append(dst, sum[:]...)
}

// PartitionKey is the container's partition key: the user record's own when
// raw, AggregatePartitionKey when aggregated, "" when empty.
func (a *Aggregator) PartitionKey() string {
	switch {
	case a.n == 0:
		return ""
	case a.raw():
		return a.firstPK
	}
	return AggregatePartitionKey
}

// ExplicitHashKey is the container's explicit hash key: the user record's own
// (maybe "") when raw; when aggregated, the first user record's effective
// hash key (its explicit hash key, else the MD5 of its partition key) in
// decimal, so the container lands where that record would.
func (a *Aggregator) ExplicitHashKey() string {
	if a.n == 0 || a.raw() || a.firstEHK != "" {
		return a.firstEHK
	}
	return kds.HashPartitionKey(a.firstPK).String()
}

// Container is one Kinesis record ready to put.
type Container struct {
	PartitionKey    string
	ExplicitHashKey string // "" for none
	Data            []byte
	Records         int // user records inside
}

// Build returns the container, its data appended to dst (nil allocates
// exactly Size bytes), and resets the Aggregator for the next one. An empty
// Aggregator builds a Container with no records.
func (a *Aggregator) Build(dst []byte) Container {
	if a.n == 0 {
		return Container{Data: dst}
	}
	c := Container{
		PartitionKey:    a.PartitionKey(),
		ExplicitHashKey: a.ExplicitHashKey(),
		Data:            a.AppendEncoded(slices.Grow(dst, a.Size())),
		Records:         a.n,
	}
	a.Reset()
	return c
}

// Reset empties the container, keeping its buffers for the next one.
func (a *Aggregator) Reset() {
	clear(a.pkIndex)
	clear(a.ehkIndex)
	a.pkTable = a.pkTable[:0]
	a.ehkTable = a.ehkTable[:0]
	a.records = a.records[:0]
	a.n = 0
	a.firstPK, a.firstEHK = "", ""
	a.firstData = [2]int{}
	a.firstHasMagic = false
}
