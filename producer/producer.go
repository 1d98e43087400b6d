package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/kds"
)

// Client is the part of the aws-sdk-go-v2 Kinesis client the producer uses;
// *kinesis.Client satisfies it. When the client also has
// DescribeStreamSummary, the producer reads the stream's MaxRecordSize.
type Client interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

type summarizer interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// Producer puts user records into one stream: it batches them per
// predicted shard, aggregates them (KPL format), rate-limits per shard,
// retries with backoff, and gives every record exactly one Result. It is
// safe for concurrent use.
type Producer struct {
	client Client
	stream string
	cfg    config
	log    *slog.Logger
	hooks  hooks

	maxRecordSize atomic.Int64
	aggLimit      atomic.Int64

	epoch time.Time // records' Put and send times are stamps: nanoseconds since epoch

	runCtx  context.Context // canceled when Close gives up: aborts requests
	cancel  context.CancelFunc
	wg      sync.WaitGroup // dispatcher, refresher, requests
	wake    chan struct{}  // nudges the dispatcher
	refresh chan struct{}  // asks the refresher for a new shard map
	stop    chan struct{}  // closed last by Close

	closing   atomic.Bool
	closeDone chan struct{}

	stats stats

	aggs  sync.Pool // of *pooledAggregator, emptied by Build
	bufs  sync.Pool // of *[]byte: aggregate data of settled containers
	slabs sync.Pool // of *[]entry: emptied slabs of settled containers

	mu            sync.Mutex // guards: every field below
	closed        bool       // intake stopped
	aborted       error      // non-nil once Close gave up: the cause records fail with
	shards        []*shard   // open shards by starting hash key
	byID          map[string]*shard
	ranges        map[string]kds.HashKeyRange // every listed shard, closed ones too
	mapLoaded     bool
	mapStale      bool // a record landed off its predicted shard; sending waits for a new map
	unrouted      []entry
	unverified    []misrouted
	bufRecords    int
	bufBytes      int64
	space         chan struct{} // closed when the budget frees, for blocked Puts
	spaceWaiters  int
	idle          chan struct{} // closed when the buffer empties, for Flush
	idleWaiters   int
	undelivered   int // records ended, their results not yet delivered
	inflight      int
	queued        int // containers in shard queues
	flushing      int
	rr            int // shard to start collecting at, round robin
	lastScan      time.Time
	lastFill      time.Time
	reportedEmpty bool
	completed     []completion // results to deliver once mu is released
	settled       []settled    // containers put, whose results to deliver once mu is released
	handles       []Pending    // the rest of the slab Put takes handles from
}

// New returns a producer for stream, putting through client. It does not
// block: the shard map is loaded in the background, and records put before
// it arrives wait for it.
func New(client Client, stream string, opts ...Option) (*Producer, error) {
	if client == nil {
		return nil, errors.New("producer: nil client")
	}
	if l := len(stream); l < 1 || l > kds.MaxStreamNameLength {
		return nil, kds.Errorf(kds.ErrCodeValidation, "1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must have length between 1 and %d", stream, kds.MaxStreamNameLength)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hks, err := newHooks(cfg.hooks)
	if err != nil {
		return nil, err
	}
	log := cfg.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Producer{
		client: client, stream: stream, cfg: cfg,
		log:       log.With("stream", stream),
		hooks:     hks,
		wake:      make(chan struct{}, 1),
		refresh:   make(chan struct{}, 1),
		stop:      make(chan struct{}),
		closeDone: make(chan struct{}),
		byID:      map[string]*shard{},
		space:     make(chan struct{}),
		idle:      make(chan struct{}),
	}
	p.epoch = cfg.now()
	p.setMaxRecordSize(cmp0(cfg.maxRecordSize, kds.DefaultMaxRecordSize))
	p.runCtx, p.cancel = context.WithCancel(context.Background())
	p.refresh <- struct{}{}
	p.wg.Add(2)
	go p.dispatch()
	go p.refresher()
	return p, nil
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (p *Producer) setMaxRecordSize(n int) {
	p.maxRecordSize.Store(int64(n))
	p.aggLimit.Store(int64(min(n, p.cfg.aggMaxSize)))
}

// Stream is the stream the producer puts into.
func (p *Producer) Stream() string { return p.stream }

// Put hands a record to the producer and returns its handle. Bad records
// (partition key empty or over 256 characters, explicit hash key not a
// decimal in 0…2^128−1, data plus partition key over the stream's
// MaxRecordSize) fail at once with a *kds.Error (ValidationException or
// InvalidArgumentException) naming the field and value; so does a Put after
// Close (ErrClosed), and one while the breaker is open (ErrUnavailable, see
// WithBreaker). When the buffer budget is used up, Put waits until ctx
// ends or fails with ErrBufferFull, as BufferFullPolicy says. Otherwise the
// record's Result arrives on the handle, exactly once.
func (p *Producer) Put(ctx context.Context, r Record) (*Pending, error) {
	return p.put(ctx, r, true, nil)
}

// PutCallback is Put without a handle: when it returns nil, fn is called
// with the record's Result exactly once (on success, on failure, and when
// Close gives up); when it returns an error (the same as Put's), fn is
// never called. It saves the handle Put allocates, for producers that put
// millions of records a second. fn may be nil when Stats and hooks are
// enough.
//
// fn runs on one of the producer's goroutines after the record's request
// is settled. The callbacks of the records that share a Kinesis record run
// one after another in Put order; others may run concurrently. Keep fn
// short: a slow fn delays the results after it, holds one of the
// MaxConcurrentRequests sending slots while it runs (so a producer whose
// callbacks cannot keep up stops sending, its buffer fills and Put blocks or
// fails as BufferFullPolicy says), and Flush and Close wait for it (so fn
// must not call them). fn may put records; with the Block
// policy give that Put a context with a deadline, as the goroutine that
// would free room may be the one running fn.
func (p *Producer) PutCallback(ctx context.Context, r Record, fn func(Result)) error {
	_, err := p.put(ctx, r, false, fn)
	return err
}

// put admits a record under the buffer budget and routes it. The result
// goes to a new handle (withHandle) or to fn.
func (p *Producer) put(ctx context.Context, r Record, withHandle bool, fn func(Result)) (*Pending, error) {
	h, err := validate(&r, int(p.maxRecordSize.Load()))
	if err != nil {
		return nil, err
	}
	if err := p.refusal(); err != nil {
		return nil, err
	}
	e := entry{rec: r, hash: h, fn: fn}
	e.size = int64(len(r.Data)+len(r.PartitionKey)+len(r.ExplicitHashKey)) + bookkeeping
	if p.cfg.aggregation {
		e.size += int64(len(r.Data)) // the container's copy
	}
	// With aggregation, a record joining an open container takes the
	// container's Put time (routeLocked): reading the clock costs more than
	// the rest of Put. Latency hooks get the true time.
	var now time.Time
	exactTime := len(p.hooks.done) > 0
	if exactTime {
		now = p.cfg.now()
	}
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if p.bufRecords == 0 || (p.bufRecords < p.cfg.bufRecords && p.bufBytes+e.size <= p.cfg.bufBytes) {
			break
		}
		if p.cfg.policy == FailFast {
			records, bytes := p.bufRecords, p.bufBytes
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: %d records, %d bytes buffered (limits %d, %d)", ErrBufferFull, records, bytes, p.cfg.bufRecords, p.cfg.bufBytes)
		}
		ch := p.space
		p.spaceWaiters++
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			if p.space == ch {
				p.spaceWaiters--
			}
			p.mu.Unlock()
			return nil, context.Cause(ctx)
		}
		if exactTime {
			now = p.cfg.now()
		}
		p.mu.Lock()
	}
	if withHandle {
		if len(p.handles) == 0 {
			p.handles = make([]Pending, pendingSlab)
		}
		e.pd = &p.handles[0]
		p.handles = p.handles[1:]
	}
	p.bufRecords++
	p.bufBytes += e.size
	if exactTime {
		e.putAt = p.stampOf(now)
	}
	wake := p.routeLocked(e)
	pd := e.pd
	var failed results
	if len(p.completed) > 0 { // the record failed at once (Close gave up)
		failed = p.takeCompletedLocked()
	}
	p.mu.Unlock()
	p.deliver(failed)
	if wake {
		p.nudge()
	}
	for _, hk := range p.hooks.received {
		hk.OnUserRecordReceived(p.stream, len(r.Data))
	}
	p.stats.received.Add(1)
	return pd, nil
}

// PutSync puts a record and waits for its result. The error is the Put
// error, the record's (Result.Err), or ctx's if it ends first. A lone
// record waits up to MaxBufferedTime for company before it is sent.
func (p *Producer) PutSync(ctx context.Context, r Record) (Result, error) {
	pd, err := p.Put(ctx, r)
	if err != nil {
		return Result{Err: err}, err
	}
	return pd.Wait(ctx)
}

// Flush sends every buffered record without waiting for MaxBufferedTime and
// waits until all have their results, those put while it waits included.
// It returns ctx's error if ctx ends first; the records stay buffered.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.flushing++
	p.mu.Unlock()
	p.nudge()
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		if p.idleLocked() {
			p.mu.Unlock()
			return nil
		}
		ch := p.idle
		p.idleWaiters++
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			if p.idle == ch {
				p.idleWaiters--
			}
			p.mu.Unlock()
			return context.Cause(ctx)
		}
	}
}

// Close stops intake (Put then fails with ErrClosed, waiting Puts too),
// sends everything buffered and waits for the results. If ctx ends first,
// every record without a result fails with ErrClosed wrapping the cause, in
// flight requests are abandoned, and Close returns ctx's error once all
// results are delivered. Close is idempotent; later calls wait for the first.
func (p *Producer) Close(ctx context.Context) error {
	if !p.closing.CompareAndSwap(false, true) {
		select {
		case <-p.closeDone:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	defer close(p.closeDone)
	p.mu.Lock()
	p.closed = true
	p.freeSpaceLocked() // blocked Puts return ErrClosed
	p.mu.Unlock()
	err := p.Flush(ctx)
	if err != nil {
		p.abort(fmt.Errorf("%w: %w", ErrClosed, err))
		p.log.Warn("producer closed before every record was put", "err", err)
	}
	close(p.stop)
	p.cancel()
	p.wg.Wait()
	// Requests abandoned by the abort have delivered their results; deliver
	// anything still left (nothing, unless a result raced the abort).
	p.mu.Lock()
	list := p.takeCompletedLocked()
	p.mu.Unlock()
	p.deliver(list)
	return err
}

// abort fails every record not in flight, and makes in-flight requests fail
// theirs when they return (the run context is canceled next).
func (p *Producer) abort(cause error) {
	p.mu.Lock()
	p.aborted = cause
	for _, s := range p.shards {
		for _, c := range s.queue {
			p.failLocked(c.recs, cause)
		}
		p.queued -= len(s.queue)
		s.queue = nil
		p.failLocked(s.open, cause)
		s.open = nil
	}
	p.failLocked(p.unrouted, cause)
	p.unrouted = nil
	// Misrouted containers are in the stream: report them put.
	for _, u := range p.unverified {
		for j := range u.c.recs {
			e := &u.c.recs[j]
			p.completeLocked(e, Result{ShardID: u.shardID, SequenceNumber: u.seq, SubSequenceNumber: int64(j), Aggregated: true, Attempts: e.tries})
		}
	}
	p.unverified = nil
	list := p.takeCompletedLocked()
	p.mu.Unlock()
	p.deliver(list)
}

// wrapLast makes err wrap cause too, when there is one.
func wrapLast(err, cause error) error {
	if cause == nil {
		return err
	}
	return fmt.Errorf("%w (last error: %w)", err, cause)
}

func (p *Producer) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Producer) freeSpaceLocked() {
	if p.spaceWaiters > 0 {
		close(p.space)
		p.space = make(chan struct{})
		p.spaceWaiters = 0
	}
}

// Stats are running totals since New.
type Stats struct {
	UserRecordsReceived int64 // accepted by Put
	UserRecordsPut      int64 // ended in success
	UserRecordsFailed   int64 // ended in an error
	KinesisRecordsPut   int64 // PutRecords entries accepted
	Requests            int64 // PutRecords requests sent
	RequestBytes        int64 // data plus partition keys of those requests
	RequestErrors       int64 // requests that failed as a whole
	EntryErrors         int64 // entries that failed (throttled included)
	Throttles           int64 // entries throttled
	Retries             int64 // user records sent again after a failure
	Misrouted           int64 // user records re-put after their aggregate landed on a shard that does not own them
	ShardMapRefreshes   int64
}

type stats struct {
	received, put, failed, kinesisPut, requests, requestBytes, requestErrors,
	entryErrors, throttles, retries, misrouted, refreshes atomic.Int64
}

// Stats returns the running totals.
func (p *Producer) Stats() Stats {
	s := &p.stats
	return Stats{
		UserRecordsReceived: s.received.Load(), UserRecordsPut: s.put.Load(), UserRecordsFailed: s.failed.Load(),
		KinesisRecordsPut: s.kinesisPut.Load(), Requests: s.requests.Load(), RequestBytes: s.requestBytes.Load(),
		RequestErrors: s.requestErrors.Load(), EntryErrors: s.entryErrors.Load(), Throttles: s.throttles.Load(),
		Retries: s.retries.Load(), Misrouted: s.misrouted.Load(), ShardMapRefreshes: s.refreshes.Load(),
	}
}

// noSDKRetries leaves retries to the producer, which backs off per shard
// and counts them.
func noSDKRetries(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

var _ Client = (*kinesis.Client)(nil)
var _ summarizer = (*kinesis.Client)(nil)

// resultEntry shortens the SDK's name.
type resultEntry = types.PutRecordsResultEntry
