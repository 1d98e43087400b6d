package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// shardLease is a lease this worker holds, and the handle of the goroutine
// that processes its shard. Every write to the lease (renew, checkpoint,
// evict) goes through it, one at a time, so the worker always knows the
// counter its next conditional write needs.
//
// The writes are sequenced by a token (writing), not by mu: mu only guards
// the lease in memory and is never held during store I/O, so a slow write
// never blocks a reader of the lease, and renewing the worker's other leases
// never waits for it.
type shardLease struct {
	w       *worker
	key     string
	shardID string
	stream  string // the stream's name
	log     *slog.Logger

	// stop is cancelled (cause errLeaseLost, or the shutdown timing out)
	// to abort processing at once.
	ctx  context.Context
	stop context.CancelCauseFunc
	// shutdown is closed to ask for a graceful stop after the current batch.
	shutdown     chan struct{}
	shutdownOnce sync.Once
	done         chan struct{}

	// writing holds a token while a write is in flight (capacity 1).
	writing chan struct{}
	// renewing is set while the renew loop has a renewal of this lease
	// queued or running, so a stalled renewal is never stacked up.
	renewing atomic.Bool

	mu sync.Mutex // guards: l, renewedAt, handOffAt, lost, released
	l  lease.Lease
	// renewedAt is when a write last proved the lease ours (local clock).
	renewedAt time.Time
	// handOffAt is when a write first showed a hand-off request (zero:
	// none), which bounds how long this worker may take to let go.
	handOffAt time.Time
	lost      bool
	released  bool
}

var errLeaseLostCause = fmt.Errorf("%w (stopping the shard)", ErrLeaseLost)

func (s *shardLease) requestShutdown() { s.shutdownOnce.Do(func() { close(s.shutdown) }) }

func (s *shardLease) snapshot() lease.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l.Clone()
}

// active reports whether the lease is still held: neither lost nor
// released.
func (s *shardLease) active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.lost && !s.released
}

// markLost records the loss and stops the shard's processing at once: its
// context ends, so its reader stops and its prefetched batches are never
// delivered.
func (s *shardLease) markLost(why string) {
	s.mu.Lock()
	already := s.lost
	s.lost = true
	s.mu.Unlock()
	if already {
		return
	}
	s.stop(errLeaseLostCause)
	s.log.Warn("lease lost", "why", why)
	s.w.cfg.hooks.leaseLost(s.shardID)
}

// lock takes the write token, waiting until ctx ends.
func (s *shardLease) lock(ctx context.Context) error {
	select {
	case s.writing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryLock takes the write token if no write is in flight.
func (s *shardLease) tryLock() bool {
	select {
	case s.writing <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *shardLease) unlock() { <-s.writing }

// write runs one conditional write with the current counter, waiting for
// the write in flight first. When the condition fails or the outcome is
// unknown (a timeout), it reads the lease back: if this worker still holds
// it, the counter is adopted and the write tried again; if another worker
// holds it or it is gone, the lease is lost.
func (s *shardLease) write(ctx context.Context, op string, f func(ctx context.Context, counter int64) (lease.Lease, error)) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("consumer: %s shard %s: %w", op, s.shardID, err)
	}
	defer s.unlock()
	return s.writeLocked(ctx, op, f)
}

// writeLocked is write with the token held.
func (s *shardLease) writeLocked(ctx context.Context, op string, f func(ctx context.Context, counter int64) (lease.Lease, error)) error {
	var err error
	for attempt := range 3 {
		s.mu.Lock()
		gone, counter := s.lost || s.released, s.l.LeaseCounter
		s.mu.Unlock()
		if gone {
			return fmt.Errorf("%w: shard %s", ErrLeaseLost, s.shardID)
		}
		opCtx, cancel := context.WithTimeout(ctx, s.w.opTimeout())
		var l lease.Lease
		l, err = f(opCtx, counter)
		cancel()
		if err == nil {
			s.mu.Lock()
			s.l, s.renewedAt = l, time.Now()
			s.mu.Unlock()
			if l.HandOffRequested() {
				// A KCL 3.x leader (or a ksp worker balancing the load)
				// asks us to hand the lease over.
				s.handOffRequested()
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		getCtx, cancel := context.WithTimeout(ctx, s.w.opTimeout())
		cur, gerr := s.w.cfg.store.GetLease(getCtx, s.key)
		cancel()
		switch {
		case gerr == nil && cur.Holder() == s.w.id:
			s.mu.Lock()
			s.l = cur
			s.mu.Unlock()
			s.log.Debug(op+" retried with the stored counter", "err", err, "attempt", attempt)
		case gerr == nil || errors.Is(gerr, lease.ErrLeaseNotFound):
			s.markLost(fmt.Sprintf("%s: lease now held by %q", op, cur.Holder()))
			return fmt.Errorf("%w: shard %s: %v", ErrLeaseLost, s.shardID, err)
		default:
			s.expire()
			return fmt.Errorf("consumer: %s shard %s: %w", op, s.shardID, err)
		}
	}
	return fmt.Errorf("consumer: %s shard %s: %w", op, s.shardID, err)
}

// expire drops the lease when it has not been renewed for a failover time:
// other workers may have taken it by now.
func (s *shardLease) expire() {
	s.mu.Lock()
	stale := time.Since(s.renewedAt) > s.w.cfg.failover
	s.mu.Unlock()
	if stale {
		s.markLost("not renewed within the failover time")
	}
}

// renew renews the lease, unless a write is in flight: every write adds one
// to the counter, so that write renews the lease too, and a renewal queued
// behind a slow write would only be stale when it runs.
func (s *shardLease) renew(ctx context.Context) error {
	if !s.tryLock() {
		s.log.Debug("renewal skipped: a write is in flight")
		s.expire()
		return nil
	}
	defer s.unlock()
	err := s.writeLocked(ctx, "renew", func(ctx context.Context, counter int64) (lease.Lease, error) {
		return s.w.cfg.store.RenewLease(ctx, s.key, s.w.id, counter)
	})
	if err == nil && s.handOffOverdue() {
		s.forceHandOff(ctx)
	}
	return err
}

func (s *shardLease) checkpoint(ctx context.Context, cp lease.Checkpoint) error {
	return s.write(ctx, "checkpoint", func(ctx context.Context, counter int64) (lease.Lease, error) {
		return s.w.cfg.store.UpdateCheckpoint(ctx, s.key, s.w.id, counter, cp)
	})
}

// release evicts the lease so another worker can take it at once, unless it
// was lost.
func (s *shardLease) release(ctx context.Context) {
	if err := s.lock(ctx); err != nil {
		return
	}
	defer s.unlock()
	s.mu.Lock()
	gone := s.lost || s.released
	s.released = true
	s.mu.Unlock()
	if gone {
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, s.w.opTimeout())
	defer cancel()
	if _, err := s.w.cfg.store.EvictLease(opCtx, s.key, s.w.id); err != nil {
		s.log.Warn("releasing lease failed; it will expire", "err", err)
		return
	}
	s.log.Debug("lease released")
}
