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

	runCtx  context.Context // canceled when Close gives up: aborts requests
	cancel  context.CancelFunc
	wg      sync.WaitGroup // dispatcher, refresher, requests
	wake    chan struct{}  // nudges the dispatcher
	refresh chan struct{}  // asks the refresher for a new shard map
	stop    chan struct{}  // closed last by Close

	closing   atomic.Bool
	closeDone chan struct{}

	stats stats

	aggs sync.Pool // of *pooledAggregator, emptied by Build

	mu            sync.Mutex // guards: every field below
	closed        bool       // intake stopped
	aborted       error      // non-nil once Close gave up: the cause records fail with
	shards        []*shard   // open shards by starting hash key
	byID          map[string]*shard
	ranges        map[string]kds.HashKeyRange // every listed shard, closed ones too
	mapLoaded     bool
	mapStale      bool // a record landed off its predicted shard; sending waits for a new map
	unrouted      []*Pending
	unverified    []misrouted
	bufRecords    int
	bufBytes      int64
	space         chan struct{} // closed when the budget frees, for blocked Puts
	spaceWaiters  int
	idle          chan struct{} // closed when the buffer empties, for Flush
	idleWaiters   int
	inflight      int
	queued        int // containers in shard queues
	flushing      int
	rr            int // shard to start collecting at, round robin
	lastScan      time.Time
	lastFill      time.Time
	reportedEmpty bool
	completed     []*Pending // results to deliver once mu is released
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
	h, err := validate(&r, int(p.maxRecordSize.Load()))
	if err != nil {
		return nil, err
	}
	if err := p.refusal(); err != nil {
		return nil, err
	}
	pd := &Pending{rec: r, hash: h}
	pd.size = int64(len(r.Data)+len(r.PartitionKey)+len(r.ExplicitHashKey)) + bookkeeping
	if p.cfg.aggregation {
		pd.size += int64(len(r.Data)) // the container's copy
	}
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if p.bufRecords == 0 || (p.bufRecords < p.cfg.bufRecords && p.bufBytes+pd.size <= p.cfg.bufBytes) {
			break
		}
		if p.cfg.policy == FailFast {
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: %d records, %d bytes buffered (limits %d, %d)", ErrBufferFull, p.bufRecords, p.bufBytes, p.cfg.bufRecords, p.cfg.bufBytes)
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
		p.mu.Lock()
	}
	p.bufRecords++
	p.bufBytes += pd.size
	pd.putAt = p.cfg.now()
	wake := p.routeLocked(pd)
	p.mu.Unlock()
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
		if p.bufRecords == 0 {
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
	fail := func(pd *Pending) {
		p.completeLocked(pd, Result{Attempts: pd.tries, Err: wrapLast(cause, pd.lastErr)})
	}
	for _, s := range p.shards {
		for _, c := range s.queue {
			for _, pd := range c.recs {
				fail(pd)
			}
		}
		p.queued -= len(s.queue)
		s.queue = nil
		for _, pd := range s.open {
			fail(pd)
		}
		s.open = nil
	}
	for _, pd := range p.unrouted {
		fail(pd)
	}
	p.unrouted = nil
	// Misrouted containers are in the stream: report them put.
	for _, u := range p.unverified {
		for j, pd := range u.c.recs {
			p.completeLocked(pd, Result{ShardID: u.shardID, SequenceNumber: u.seq, SubSequenceNumber: int64(j), Aggregated: true, Attempts: pd.tries})
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

// completeLocked ends a record with res, once; the result is delivered by
// deliver after mu is released.
func (p *Producer) completeLocked(pd *Pending, res Result) {
	if !pd.finished.CompareAndSwap(false, true) {
		return
	}
	pd.final = res
	p.bufRecords--
	p.bufBytes -= pd.size
	p.freeSpaceLocked()
	if p.bufRecords == 0 && p.idleWaiters > 0 {
		close(p.idle)
		p.idle = make(chan struct{})
		p.idleWaiters = 0
	}
	p.completed = append(p.completed, pd)
}

func (p *Producer) freeSpaceLocked() {
	if p.spaceWaiters > 0 {
		close(p.space)
		p.space = make(chan struct{})
		p.spaceWaiters = 0
	}
}

func (p *Producer) takeCompletedLocked() []*Pending {
	list := p.completed
	p.completed = nil
	return list
}

// deliver publishes results: hooks, then the handles.
func (p *Producer) deliver(list []*Pending) {
	if len(list) == 0 {
		return
	}
	now := p.cfg.now()
	var ok, failed int64
	for _, pd := range list {
		if pd.final.Err == nil {
			ok++
		} else {
			failed++
		}
		if len(p.hooks.done) > 0 {
			d := UserRecordDone{Stream: p.stream, Result: pd.final, Latency: now.Sub(pd.putAt)}
			if !pd.sentAt.IsZero() {
				d.Buffered = pd.sentAt.Sub(pd.putAt)
			}
			for _, h := range p.hooks.done {
				h.OnUserRecordDone(d)
			}
		}
		pd.publish(pd.final)
	}
	p.stats.put.Add(ok)
	p.stats.failed.Add(failed)
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
