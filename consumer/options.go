package consumer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/sdkhttp"
)

// Option configures a Consumer; pass options to New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// InitialPosition is where a shard that has no checkpoint yet starts.
type InitialPosition struct {
	cp lease.Checkpoint
	ts time.Time
}

// Latest starts after the newest record: only records put from now on
// are processed.
func Latest() InitialPosition { return InitialPosition{cp: lease.Latest} }

// TrimHorizon starts at the oldest record the stream still holds.
func TrimHorizon() InitialPosition { return InitialPosition{cp: lease.TrimHorizon} }

// AtTimestamp starts at the first record that arrived at or after t.
func AtTimestamp(t time.Time) InitialPosition { return InitialPosition{cp: lease.AtTimestamp, ts: t} }

func (p InitialPosition) String() string {
	if p.cp.IsAtTimestamp() {
		return p.cp.SequenceNumber + "(" + p.ts.UTC().Format(time.RFC3339Nano) + ")"
	}
	return p.cp.SequenceNumber
}

type config struct {
	stream      string
	streams     []string                   // multi-stream mode (multistream.go)
	tracker     StreamTracker              // multi-stream mode with a changing list
	formerWait  time.Duration              // multi-stream mode: when to delete a former stream's leases
	initialBy   map[string]InitialPosition // by stream, over initial
	kinesis     KinesisAPI
	store       lease.Store
	workerID    string
	processor   ProcessorFactory
	handler     Handler
	failover    time.Duration
	maxRecords  int
	idle        time.Duration
	initial     InitialPosition
	maxLeases   int
	maxSteal    int
	syncEvery   time.Duration
	prefetch    int
	shutdownMax time.Duration
	handOffMax  time.Duration
	retryMax    time.Duration
	log         *slog.Logger
	hooks       hooks
	fanOut      string // stream consumer name; "" reads by polling
	failure     failureConfig
	raw         bool // deliver Kinesis records as stored: no deaggregation
	// slabs lends the memory GetRecords answers' data are decoded into;
	// a batch's slabs come back once its processing call has returned.
	slabs *sdkhttp.SlabPool
	// fleet: a member of a KCL 3.x fleet (kclfleet.go), publishing worker
	// metrics every metricsEvery.
	fleet        bool
	metricsEvery time.Duration
}

// WithStream names the stream to consume. Exactly one of WithStream,
// WithStreams and WithStreamTracker is required.
func WithStream(name string) Option { return optionFunc(func(c *config) { c.stream = name }) }

// WithKinesis sets the Kinesis client (a *kinesis.Client from
// aws-sdk-go-v2 satisfies KinesisAPI). Required. Every call the consumer
// makes through it carries sdkhttp.FixKinesis, and GetRecords
// sdkhttp.FastCodecs; a client built with sdkhttp.FastCodecsCBOR reads
// GetRecords in CBOR (no base64 on either side).
func WithKinesis(k KinesisAPI) Option {
	return optionFunc(func(c *config) { c.kinesis = fixKinesis(k) })
}

// WithLeaseStore sets the lease table shared by every worker of the
// application (lease/dynamo in production; the table name is the
// application name, as with the KCL). Required. Run creates the table when
// it is missing. The consumer does not close the store.
func WithLeaseStore(s lease.Store) Option { return optionFunc(func(c *config) { c.store = s }) }

// WithWorkerID sets this worker's id, written as leaseOwner. It must be
// unique among the workers sharing the lease table. Default: the host name
// followed by a random suffix.
func WithWorkerID(id string) Option { return optionFunc(func(c *config) { c.workerID = id }) }

// WithProcessor processes records with the full KCL lifecycle: f is called
// once for each shard the worker starts processing. Exactly one of
// WithProcessor and WithHandler is required.
func WithProcessor(f ProcessorFactory) Option {
	return optionFunc(func(c *config) { c.processor = f })
}

// WithHandler processes records with h, which gets each batch of a shard in
// order; after h returns nil the consumer checkpoints the batch's last
// record, and it checkpoints SHARD_END itself. When h fails (error or
// panic) the batch is delivered again, with back-off, from the last
// checkpoint. Exactly one of WithProcessor and WithHandler is required.
func WithHandler(h Handler) Option { return optionFunc(func(c *config) { c.handler = h }) }

// WithFailoverTime sets how long a lease may go without a heartbeat before
// other workers consider its owner dead and take it (KCL
// failoverTimeMillis). Leases are renewed every third of it. Default 10 s.
func WithFailoverTime(d time.Duration) Option { return optionFunc(func(c *config) { c.failover = d }) }

// WithMaxRecords sets the most records one GetRecords call asks for
// (1…10000). Default 10000.
func WithMaxRecords(n int) Option { return optionFunc(func(c *config) { c.maxRecords = n }) }

// WithIdleTime sets the time from one GetRecords call on a shard to the
// next (the round trip and the delivery of the batch count toward it).
// Default 1 s. Kinesis allows 5 GetRecords calls per second per shard, so
// values under 200 ms get throttled on AWS (the consumer then backs off);
// they are meant for the embedded server and tests. At least 1 ms.
func WithIdleTime(d time.Duration) Option { return optionFunc(func(c *config) { c.idle = d }) }

// WithInitialPosition sets where a shard without a checkpoint starts
// (Latest, TrimHorizon or AtTimestamp). Children of a resharded shard always
// start at their beginning. Default Latest.
func WithInitialPosition(p InitialPosition) Option {
	return optionFunc(func(c *config) { c.initial = p })
}

// WithMaxLeases caps how many leases this worker holds (KCL
// maxLeasesForWorker). Default 0: no cap.
func WithMaxLeases(n int) Option { return optionFunc(func(c *config) { c.maxLeases = n }) }

// WithMaxLeasesToSteal caps how many leases one balancing round asks the
// most loaded worker to hand over (KCL maxLeasesToStealAtOneTime). Default 1.
func WithMaxLeasesToSteal(n int) Option { return optionFunc(func(c *config) { c.maxSteal = n }) }

// WithShardSyncInterval sets how often the worker lists the stream's shards
// and creates leases for new ones (it also does so at start and whenever one
// of its shards ends). Default 1 minute.
func WithShardSyncInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.syncEvery = d })
}

// WithPrefetch sets how many batches each shard's reader fetches ahead of
// the processor (at least 1). A slow processor stops the reader once the
// buffer is full, so memory stays bounded by about prefetch × max records.
// Default 3.
func WithPrefetch(batches int) Option { return optionFunc(func(c *config) { c.prefetch = batches }) }

// WithShutdownTimeout bounds the graceful shutdown: processors get this long
// to finish their batch and checkpoint before their context is cancelled.
// Default 30 s.
func WithShutdownTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.shutdownMax = d })
}

// WithMaxRetryBackoff caps the back-off between retries of a failing batch,
// a failing read or a failing lease operation. Default 10 s.
func WithMaxRetryBackoff(d time.Duration) Option {
	return optionFunc(func(c *config) { c.retryMax = d })
}

// WithLogger sets the logger; records carry the keys stream, worker and
// shard_id. Default nil: discard.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// WithFanOut reads with enhanced fan-out (SubscribeToShard) instead of
// polling GetRecords: the consumer registers the stream consumer name (use
// the application's name, shared by all its workers) when it is missing,
// waits until it is ACTIVE, and subscribes to each shard it leases, getting
// records pushed as they are put, at up to 2 MiB/s per shard of its own.
// The client given to WithKinesis must implement FanOutAPI
// (*kinesis.Client does). Hooks, checkpoints and resharding work as with
// polling; lag comes from each event's MillisBehindLatest. Default: polling.
func WithFanOut(consumerName string) Option {
	return optionFunc(func(c *config) { c.fanOut = consumerName })
}

// WithDeaggregation(false) delivers each Kinesis record as it is stored: a
// KPL aggregate arrives as one Record holding the aggregate's bytes, as AWS
// Lambda hands it to a function, and nothing is dropped for lying outside
// the shard's hash range. Default true: aggregates are taken apart.
func WithDeaggregation(on bool) Option { return optionFunc(func(c *config) { c.raw = !on }) }

// WithHooks adds metrics hooks (see Hook); New refuses a value that
// implements no Hook interface. Default none.
func WithHooks(hs ...Hook) Option {
	return optionFunc(func(c *config) { c.hooks = append(c.hooks, hs...) })
}

func defaultConfig() config {
	return config{
		failover:    10 * time.Second,
		maxRecords:  10000,
		idle:        time.Second,
		initial:     Latest(),
		maxSteal:    1,
		syncEvery:   time.Minute,
		prefetch:    3,
		shutdownMax: 30 * time.Second,
		handOffMax:  30 * time.Second,
		retryMax:    10 * time.Second,
		slabs:       sdkhttp.NewSlabPool(maxFreeSlabs),
	}
}

// maxFreeSlabs bounds the memory for GetRecords answers' data a consumer
// keeps while no batch uses it: about six full answers.
const maxFreeSlabs = 64 << 20

func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("consumer: "+format, args...)) }
	c.validateStreams(bad)
	c.validateFleet(bad)
	if c.kinesis == nil {
		bad("no Kinesis client: WithKinesis is required")
	}
	if c.store == nil {
		bad("no lease store: WithLeaseStore is required")
	}
	if (c.processor == nil) == (c.handler == nil) {
		bad("exactly one of WithProcessor and WithHandler is required")
	}
	if c.failover < 30*time.Millisecond {
		bad("failover time %v is below 30ms", c.failover)
	}
	if c.maxRecords < 1 || c.maxRecords > 10000 {
		bad("max records %d is outside 1…10000", c.maxRecords)
	}
	if c.idle < time.Millisecond {
		bad("idle time %v is below 1ms", c.idle)
	}
	if c.initial.cp.IsZero() {
		bad("initial position is not set: use Latest, TrimHorizon or AtTimestamp")
	}
	if c.maxLeases < 0 {
		bad("max leases %d is negative", c.maxLeases)
	}
	if c.maxSteal < 1 {
		bad("max leases to steal %d is below 1", c.maxSteal)
	}
	if c.syncEvery < time.Millisecond {
		bad("shard sync interval %v is below 1ms", c.syncEvery)
	}
	if c.prefetch < 1 {
		bad("prefetch %d is below 1", c.prefetch)
	}
	if c.shutdownMax <= 0 {
		bad("shutdown timeout %v is not positive", c.shutdownMax)
	}
	if c.formerWait < 0 {
		bad("former streams' lease deletion wait %v is negative", c.formerWait)
	}
	if c.handOffMax <= 0 {
		bad("hand-off timeout %v is not positive", c.handOffMax)
	}
	if c.retryMax < time.Millisecond {
		bad("max retry back-off %v is below 1ms", c.retryMax)
	}
	if c.fanOut != "" {
		if _, ok := c.kinesis.(FanOutAPI); !ok {
			bad("fan-out consumer %s: the Kinesis client (%T) does not implement FanOutAPI", c.fanOut, c.kinesis)
		}
		if !validConsumerName(c.fanOut) {
			bad("fan-out consumer name %q: want 1–128 characters of a-z, A-Z, 0-9, '_', '.', '-'", c.fanOut)
		}
	}
	c.failure.validate(c, bad)
	for i, h := range c.hooks {
		if !isHook(h) {
			bad("hook %d (%T) implements no Hook interface", i, h)
		}
	}
	return errors.Join(errs...)
}

func defaultWorkerID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
