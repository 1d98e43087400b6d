package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// shardLease is a lease this worker holds, and the handle of the goroutine
// that processes its shard. Every write to the lease (renew, checkpoint,
// evict) goes through it, one at a time, so the worker always knows the
// counter its next conditional write needs.
type shardLease struct {
	w       *worker
	key     string
	shardID string
	log     *slog.Logger

	// stop is cancelled (cause errLeaseLost, or the shutdown timing out)
	// to abort processing at once.
	ctx  context.Context
	stop context.CancelCauseFunc
	// shutdown is closed to ask for a graceful stop after the current batch.
	shutdown     chan struct{}
	shutdownOnce sync.Once
	done         chan struct{}

	mu sync.Mutex // guards: l, renewedAt, lost, released
	l  lease.Lease
	// renewedAt is when a write last proved the lease ours (local clock).
	renewedAt time.Time
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

// markLost records the loss and stops the shard's processing.
func (s *shardLease) markLostLocked(why string) {
	if s.lost {
		return
	}
	s.lost = true
	s.log.Warn("lease lost", "why", why)
	s.w.cfg.hooks.leaseLost(s.shardID)
	s.stop(errLeaseLostCause)
}

// write runs one conditional write with the current counter. When the
// condition fails or the outcome is unknown (a timeout), it reads the lease
// back: if this worker still holds it, the counter is adopted and the write
// tried again; if not, the lease is lost.
func (s *shardLease) write(ctx context.Context, op string, f func(ctx context.Context, counter int64) (lease.Lease, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost || s.released {
		return fmt.Errorf("%w: shard %s", ErrLeaseLost, s.shardID)
	}
	var err error
	for attempt := range 3 {
		opCtx, cancel := context.WithTimeout(ctx, s.w.opTimeout())
		var l lease.Lease
		l, err = f(opCtx, s.l.LeaseCounter)
		cancel()
		if err == nil {
			s.l, s.renewedAt = l, time.Now()
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
			s.l = cur
			s.log.Debug(op+" retried with the stored counter", "err", err, "attempt", attempt)
		case gerr == nil || errors.Is(gerr, lease.ErrLeaseNotFound):
			s.markLostLocked(fmt.Sprintf("%s: lease now held by %q", op, cur.Holder()))
			return fmt.Errorf("%w: shard %s: %v", ErrLeaseLost, s.shardID, err)
		default:
			s.expireLocked()
			return fmt.Errorf("consumer: %s shard %s: %w", op, s.shardID, err)
		}
	}
	return fmt.Errorf("consumer: %s shard %s: %w", op, s.shardID, err)
}

// expireLocked drops the lease when it has not been renewed for a failover
// time: other workers may have taken it by now.
func (s *shardLease) expireLocked() {
	if time.Since(s.renewedAt) > s.w.cfg.failover {
		s.markLostLocked("not renewed within the failover time")
	}
}

func (s *shardLease) renew(ctx context.Context) error {
	err := s.write(ctx, "renew", func(ctx context.Context, counter int64) (lease.Lease, error) {
		return s.w.cfg.store.RenewLease(ctx, s.key, s.w.id, counter)
	})
	if err == nil {
		s.mu.Lock()
		handOff := s.l.HandOffRequested()
		s.mu.Unlock()
		if handOff {
			// A KCL 3.x leader asks us to hand the lease over.
			s.requestShutdown()
		}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost || s.released {
		return
	}
	s.released = true
	opCtx, cancel := context.WithTimeout(ctx, s.w.opTimeout())
	defer cancel()
	if _, err := s.w.cfg.store.EvictLease(opCtx, s.key, s.w.id); err != nil {
		s.log.Warn("releasing lease failed; it will expire", "err", err)
		return
	}
	s.log.Debug("lease released")
}
