package consumer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// worker is one Run of a Consumer: the lease coordinator (renewing, taking,
// shard sync) and the goroutines of the shards it holds.
type worker struct {
	cfg       *config
	id        string
	log       *slog.Logger
	newReader readerFactory
	// bg outlives Run's context, so the graceful shutdown can still
	// checkpoint and release; it is never cancelled.
	bg context.Context

	mu     sync.Mutex // guards: shards
	shards map[string]*shardLease
	// shardWG tracks shard goroutines; Add only from the run loop.
	shardWG sync.WaitGroup

	syncNow chan struct{}
	// obs is the taker's record of when each lease last changed, by the
	// local clock; only the run loop touches it.
	obs map[string]observation
	// live is when the taker last saw each other worker holding a live
	// lease; incoming are the leases on their way to it, by when it asked
	// for them (or first saw them coming). Only the run loop touches them.
	live     map[string]time.Time
	incoming map[string]time.Time

	// streams are the streams followed, byPrefix the same by lease key
	// prefix; only the run loop touches them (setStreams, called by
	// trackStreams, changes them). former is when each stream not followed
	// but with leases in the table was first found so (by stream
	// identifier); only the run loop touches it.
	streams  []followed
	byPrefix map[string]followed
	former   map[string]time.Time

	// leader is what the run loop last saw of a KCL 3.x leader's lock
	// (WithWorkerMetrics, kclfleet.go).
	leader leaderState
}

func newWorker(cfg *config) *worker {
	w := &worker{
		cfg:      cfg,
		id:       cfg.workerID,
		log:      cfg.log,
		shards:   make(map[string]*shardLease),
		syncNow:  make(chan struct{}, 1),
		obs:      make(map[string]observation),
		live:     make(map[string]time.Time),
		incoming: make(map[string]time.Time),
		former:   make(map[string]time.Time),
	}
	w.newReader = func(ctx context.Context, stream, shardID string, from startPosition) shardReader {
		return newPollingReader(ctx, w.cfg, w.log.With("shard_id", shardID), stream, shardID, from)
	}
	if cfg.fanOut != "" {
		fo := &fanOut{name: cfg.fanOut, k: cfg.kinesis.(FanOutAPI)}
		w.newReader = func(ctx context.Context, stream, shardID string, from startPosition) shardReader {
			return newFanOutReader(ctx, w.cfg, fo, w.log.With("shard_id", shardID), stream, shardID, from)
		}
	}
	return w
}

// opTimeout bounds one lease store call.
func (w *worker) opTimeout() time.Duration { return max(w.cfg.failover/2, time.Second) }

// takeInterval is how often the worker looks for leases to take: a sixth of
// the failover time, so a dead worker's last renewal is seen at most one
// interval late and its expiry noticed at most one interval after the
// failover time: its shards move within failover + failover/3 (one renewal
// interval) of its death. The Java KCL scans every 2 × failover, which is why
// its pick-up takes ~20 s.
func (w *worker) takeInterval() time.Duration { return w.cfg.failover / 6 }

func (w *worker) requestSync() {
	select {
	case w.syncNow <- struct{}{}:
	default:
	}
}

// heldKeys returns the keys of the leases the worker holds, as a set.
func (w *worker) heldKeys() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(w.shards))
	for key := range w.shards {
		out[key] = true
	}
	return out
}

func (w *worker) held() []*shardLease {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*shardLease, 0, len(w.shards))
	for _, s := range w.shards {
		out = append(out, s)
	}
	return out
}

// run runs the worker until ctx ends, then shuts down in order: stop
// taking and syncing, stop the shards (each lets its processor finish and
// checkpoint, then releases its lease) while giving back the leases on
// their way to it, stop renewing, wait.
func (w *worker) run(ctx context.Context) {
	w.bg = context.WithoutCancel(ctx)
	renewCtx, stopRenew := context.WithCancel(w.bg)
	var loops sync.WaitGroup
	loops.Go(func() { w.renewLoop(renewCtx) })
	if w.cfg.fleet {
		loops.Go(func() { w.publishMetrics(renewCtx) })
	}
	w.log.Info("worker started")

	w.syncShards(ctx)
	w.take(ctx)
	takeT := time.NewTicker(w.takeInterval())
	syncT := time.NewTicker(w.cfg.syncEvery)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-takeT.C:
			w.take(ctx)
		case <-syncT.C:
			w.syncShards(ctx)
		case <-w.syncNow:
			w.syncShards(ctx)
			w.take(ctx)
		}
	}
	takeT.Stop()
	syncT.Stop()

	w.log.Info("worker shutting down")
	givenBack := w.giveBackIncoming()
	w.stopShards()
	givenBack()
	stopRenew()
	loops.Wait()
	w.log.Info("worker stopped")
}

func (w *worker) stopShards() {
	shards := w.held()
	for _, s := range shards {
		s.requestShutdown()
	}
	done := make(chan struct{})
	go func() { w.shardWG.Wait(); close(done) }()
	t := time.NewTimer(w.cfg.shutdownMax)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Warn("shutdown timeout: cancelling processors", "timeout", w.cfg.shutdownMax)
		for _, s := range w.held() {
			s.stop(errShutdownTimeout)
		}
		<-done
	}
}

// maxRenewals bounds the renewals in flight at once, as the KCL's
// maxLeaseRenewalThreads (LeaseManagementConfig, default 20) does.
const maxRenewals = 20

// renewLoop renews every held lease each third of the failover time. The
// renewals run concurrently (at most maxRenewals at once), each lease at
// most once at a time, so one slow or stalled lease never delays the
// renewal of the others.
func (w *worker) renewLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.failover / 3)
	defer t.Stop()
	slots := make(chan struct{}, maxRenewals)
	var renewals sync.WaitGroup
	defer renewals.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range w.held() {
			if !s.active() || !s.renewing.CompareAndSwap(false, true) {
				continue
			}
			renewals.Go(func() {
				defer s.renewing.Store(false)
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-slots }()
				if err := s.renew(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("lease renewal failed", "err", err)
				}
			})
		}
	}
}

// startShard starts the goroutine that owns a freshly taken lease.
func (w *worker) startShard(l lease.Lease) {
	ctx, stop := context.WithCancelCause(w.bg)
	stream, _ := w.streamOf(l.LeaseKey)
	log := w.log.With("shard_id", l.ShardID())
	if stream.prefix != "" {
		log = log.With("stream", stream.name)
	}
	s := &shardLease{
		w: w, key: l.LeaseKey, shardID: l.ShardID(), stream: stream.name,
		log: log,
		ctx: ctx, stop: stop,
		shutdown: make(chan struct{}), done: make(chan struct{}),
		writing: make(chan struct{}, 1),
		l:       l, renewedAt: time.Now(),
	}
	w.mu.Lock()
	w.shards[s.key] = s
	w.mu.Unlock()
	w.shardWG.Go(func() {
		defer close(s.done)
		defer stop(nil)
		w.consumeShard(s)
		w.mu.Lock()
		delete(w.shards, s.key)
		w.mu.Unlock()
	})
}
