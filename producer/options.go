package producer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/breaker"
	"github.com/ksp-project/ksp/kds"
)

// Option configures a Producer. Options are applied in order by New, which
// validates the result.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// BufferPolicy says what Put does when the buffer budget is used up.
type BufferPolicy int

const (
	// Block makes Put wait for room, until its context ends.
	Block BufferPolicy = iota
	// FailFast makes Put return ErrBufferFull at once.
	FailFast
)

func (b BufferPolicy) String() string {
	switch b {
	case Block:
		return "block"
	case FailFast:
		return "fail-fast"
	}
	return fmt.Sprintf("BufferPolicy(%d)", int(b))
}

type config struct {
	aggregation    bool
	aggMaxSize     int
	linger         time.Duration
	collectCount   int
	collectSize    int
	maxRecordSize  int // 0: the stream's (DescribeStreamSummary), else 1 MiB
	ratePercent    int
	ttl            time.Duration
	maxRequests    int
	bufBytes       int64
	bufRecords     int
	policy         BufferPolicy
	strict         bool
	backoffMin     time.Duration
	backoffMax     time.Duration
	requestTimeout time.Duration
	log            *slog.Logger
	hooks          []Hook
	now            func() time.Time
	breaker        *breaker.Breaker
}

func defaultConfig() config {
	return config{
		aggregation:    true,
		aggMaxSize:     aggregation.DefaultMaxSize,
		linger:         100 * time.Millisecond,
		collectCount:   kds.MaxRecordsPerPutRecords,
		collectSize:    kds.MaxPutRecordsRequestSize,
		ratePercent:    150,
		ttl:            30 * time.Second,
		maxRequests:    24,
		bufBytes:       64 << 20,
		bufRecords:     1 << 20,
		policy:         Block,
		backoffMin:     50 * time.Millisecond,
		backoffMax:     2 * time.Second,
		requestTimeout: 30 * time.Second,
		now:            time.Now,
	}
}

func (c *config) validate() error {
	switch {
	case c.aggMaxSize < 64 || c.aggMaxSize > kds.MaxMaxRecordSizeKiB<<10:
		return fmt.Errorf("producer: AggregationMaxSize %d must be in 64…%d bytes", c.aggMaxSize, kds.MaxMaxRecordSizeKiB<<10)
	case c.linger < 0:
		return fmt.Errorf("producer: MaxBufferedTime %s must not be negative", c.linger)
	case c.collectCount < 1 || c.collectCount > kds.MaxRecordsPerPutRecords:
		return fmt.Errorf("producer: CollectionMaxCount %d must be in 1…%d", c.collectCount, kds.MaxRecordsPerPutRecords)
	case c.collectSize < 1 || c.collectSize > kds.MaxMaxRecordSizeKiB<<10:
		return fmt.Errorf("producer: CollectionMaxSize %d must be in 1…%d bytes", c.collectSize, kds.MaxMaxRecordSizeKiB<<10)
	case c.maxRecordSize != 0 && (c.maxRecordSize < 1 || c.maxRecordSize > kds.MaxMaxRecordSizeKiB<<10):
		return fmt.Errorf("producer: MaxRecordSize %d must be in 1…%d bytes", c.maxRecordSize, kds.MaxMaxRecordSizeKiB<<10)
	case c.ratePercent < 0:
		return fmt.Errorf("producer: RateLimit %d%% must not be negative", c.ratePercent)
	case c.ttl <= 0:
		return fmt.Errorf("producer: RecordTTL %s must be positive", c.ttl)
	case c.maxRequests < 1:
		return fmt.Errorf("producer: MaxConcurrentRequests %d must be at least 1", c.maxRequests)
	case c.bufBytes < 1 || c.bufRecords < 1:
		return fmt.Errorf("producer: BufferLimits %d bytes, %d records must both be positive", c.bufBytes, c.bufRecords)
	case c.policy != Block && c.policy != FailFast:
		return fmt.Errorf("producer: unknown %s", c.policy)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("producer: RetryBackoff %s…%s must be positive and ordered", c.backoffMin, c.backoffMax)
	case c.requestTimeout <= 0:
		return fmt.Errorf("producer: RequestTimeout %s must be positive", c.requestTimeout)
	}
	return nil
}

// Aggregation turns KPL aggregation on or off. Default on: user records
// predicted for the same shard are packed into one Kinesis record (the KPL
// format, see package aggregation), each keeping its partition key and
// explicit hash key. Off, every user record is its own Kinesis record.
func Aggregation(on bool) Option { return optionFunc(func(c *config) { c.aggregation = on }) }

// AggregationMaxSize limits an aggregated Kinesis record (data plus
// partition key) to n bytes. Default 51200, the KPL's AggregationMaxSize.
// Larger containers mean fewer Kinesis records per user record, and count
// less against the shard's 1,000 records/s.
func AggregationMaxSize(n int) Option { return optionFunc(func(c *config) { c.aggMaxSize = n }) }

// MaxBufferedTime is how long a user record may wait to be batched before
// it is sent. Default 100 ms, the KPL's RecordMaxBufferedTime. Records are
// sent earlier when a container or a PutRecords request fills up.
func MaxBufferedTime(d time.Duration) Option { return optionFunc(func(c *config) { c.linger = d }) }

// CollectionMaxCount limits the Kinesis records of one PutRecords request.
// Default 500, the API's limit and the KPL's CollectionMaxCount.
func CollectionMaxCount(n int) Option { return optionFunc(func(c *config) { c.collectCount = n }) }

// CollectionMaxSize limits the bytes (data plus partition keys) of one
// PutRecords request. Default 5 MiB, the API's limit for streams with the
// default MaxRecordSize, and the KPL's CollectionMaxSize.
func CollectionMaxSize(n int) Option { return optionFunc(func(c *config) { c.collectSize = n }) }

// MaxRecordSize is the stream's limit on one record, data plus partition
// key, used to refuse oversize records in Put. Default: the stream's
// MaxRecordSizeInKiB from DescribeStreamSummary (when the client has that
// method), 1 MiB until it is known.
func MaxRecordSize(n int) Option { return optionFunc(func(c *config) { c.maxRecordSize = n }) }

// RateLimit caps what the producer sends to each shard at percent of the
// shard's write limits (1,000 records/s and 1 MiB/s), with a token bucket
// per shard for records and one for bytes. Default 150, the KPL's RateLimit:
// a little over the limit, so a shard is kept busy and the few throttles are
// retried. The buckets also back off when Kinesis throttles a shard (halving
// its rate, then adding 5% of it back per successful request). 0 turns the
// limiter off: only throttling answers slow the producer down (for servers
// that enforce no limits).
func RateLimit(percent int) Option { return optionFunc(func(c *config) { c.ratePercent = percent }) }

// RecordTTL is how long a user record may stay unsent or failing before it
// fails with ErrRecordExpired, wrapping the last cause. Default 30 s, the
// KPL's RecordTtl. Records of one Kinesis record expire together, when the
// oldest does.
func RecordTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.ttl = d }) }

// MaxConcurrentRequests limits the PutRecords requests in flight. Default
// 24, the KPL's MaxConnections.
func MaxConcurrentRequests(n int) Option { return optionFunc(func(c *config) { c.maxRequests = n }) }

// BufferLimits is the memory budget: the user records that Put accepted and
// that have no result yet, at most bytes and at most records. A record
// counts its data and keys, about 400 bytes of bookkeeping and, with
// aggregation, its data again for the container's copy; requests in flight
// hold their encoding on top (base64 JSON: about 1.4 times their bytes). Default 64 MiB and
// 1,048,576 records. What Put does when a record does not fit is set by
// BufferFullPolicy. One record always fits an empty buffer.
func BufferLimits(bytes int64, records int) Option {
	return optionFunc(func(c *config) { c.bufBytes, c.bufRecords = bytes, records })
}

// BufferFullPolicy says what Put does when the budget is used up: Block
// (the default) waits for room until Put's context ends, FailFast returns
// ErrBufferFull.
func BufferFullPolicy(p BufferPolicy) Option { return optionFunc(func(c *config) { c.policy = p }) }

// StrictOrdering keeps every shard's records in Put order, and so every
// partition key's: at most one Kinesis record per shard is in flight, and a
// failed one is retried before anything after it is sent. Default off:
// several requests may carry one shard's records at once, and a retried
// record may land after later ones. Strict ordering costs throughput, far
// less with aggregation on.
func StrictOrdering(on bool) Option { return optionFunc(func(c *config) { c.strict = on }) }

// RetryBackoff bounds the exponential backoff between attempts at a failed
// record or request: the n-th retry waits a random time between half and
// all of min·2ⁿ⁻¹, capped at max. Default 50 ms and 2 s.
func RetryBackoff(min, max time.Duration) Option {
	return optionFunc(func(c *config) { c.backoffMin, c.backoffMax = min, max })
}

// RequestTimeout bounds one PutRecords or ListShards call. Default 30 s.
// The records of a timed-out request are retried.
func RequestTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.requestTimeout = d })
}

// Logger receives the producer's logs, with the key "stream" (and
// "shard_id" where one applies). Default nil: discard.
func Logger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// WithHooks adds metric hooks: values implementing one or more of the Hook*
// interfaces; New refuses a value that implements none. Default none.
func WithHooks(hooks ...Hook) Option {
	return optionFunc(func(c *config) { c.hooks = append(c.hooks, hooks...) })
}
