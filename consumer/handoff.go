package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// A graceful hand-off moves a lease between live workers without replaying a
// record, as a KCL 3.x leader moves one (coordinator/assignment/
// LeaseAssignmentManager.java, lifecycle/LeaseGracefulShutdownHandler.java):
//
//  1. The initiator writes leaseOwner = next, checkpointOwner = holder
//     (lease.Store.HandOffLease, the KCL's initiateGracefulLeaseHandoff);
//     the counter does not move, so the holder's renewals go on.
//  2. The holder sees checkpointOwner on its next write, stops after the
//     batch in hand, checkpoints (ShutdownRequested) and evicts itself,
//     which removes checkpointOwner: next now holds the lease.
//  3. next finds the lease under its id in its next scan of the table (takeOwned) or, while it follows a
//     KCL 3.x leader, in the LeaseOwnerToLeaseKeyIndex (discover), and
//     takes it from the checkpoint.
//
// Both waits are bounded by the hand-off timeout (WithHandOffTimeout, the
// KCL's gracefulLeaseHandoffTimeoutMillis): a holder whose processor has not
// let go by then cancels it and evicts itself anyway (the KCL's
// LeaseGracefulShutdownHandler transfers the lease the same way), and an
// initiator whose holder never lets go (a KCL 2.x worker ignores
// checkpointOwner and renews on the counter alone) takes the lease once the
// timeout and a failover time have passed. Either way the records after the
// last checkpoint are replayed, as after a steal.

// errHandOffTimeout cancels a processor that has not let go of a lease
// handed over within the hand-off timeout. It is a shutdown timeout, so the
// shard's goroutine ends as after one and releases the lease.
var errHandOffTimeout = fmt.Errorf("%w: the lease is being handed over", errShutdownTimeout)

// WithHandOffTimeout bounds a graceful hand-off (the KCL's
// gracefulLeaseHandoffTimeoutMillis): a worker asked to hand a lease over
// gives its processor this long to finish the batch and checkpoint, then
// cancels it and lets go; a worker that asked for a lease takes it
// regardless once this and a failover time have passed. Default 30 s.
func WithHandOffTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.handOffMax = d })
}

// handOffRequested records the first sight of a hand-off request and asks
// the shard to stop after its batch.
func (s *shardLease) handOffRequested() {
	s.mu.Lock()
	if s.handOffAt.IsZero() {
		s.handOffAt = time.Now()
	}
	s.mu.Unlock()
	s.requestShutdown()
}

// handOffOverdue reports whether a hand-off request has waited longer than
// the hand-off timeout for this worker to let go.
func (s *shardLease) handOffOverdue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.handOffAt.IsZero() && !s.lost && !s.released && time.Since(s.handOffAt) > s.w.cfg.handOffMax
}

// forceHandOff cancels the shard's processing and evicts the lease, which
// passes it to the worker it is being handed to. The caller holds the write
// token, so no checkpoint can slip in after the eviction.
func (s *shardLease) forceHandOff(ctx context.Context) {
	s.mu.Lock()
	gone := s.lost || s.released
	s.released = true
	next := s.l.LeaseOwner
	s.mu.Unlock()
	if gone {
		return
	}
	s.log.Warn("hand-off timed out: cancelling the processor and letting go", "to", next, "timeout", s.w.cfg.handOffMax)
	s.stop(errHandOffTimeout)
	opCtx, cancel := context.WithTimeout(ctx, s.w.opTimeout())
	defer cancel()
	if _, err := s.w.cfg.store.EvictLease(opCtx, s.key, s.w.id); err != nil {
		s.log.Warn("letting go of a lease being handed over failed; it will expire", "err", err)
	}
}

// incomingOverdue reports whether a lease on its way to this worker has
// waited longer than the hand-off timeout and a failover time for its holder
// to let go. It starts the clock for a hand-off it did not ask for (one a
// KCL 3.x leader started, or one asked for before a restart).
func (w *worker) incomingOverdue(l lease.Lease, now time.Time) bool {
	since, ok := w.incoming[l.LeaseKey]
	if !ok {
		w.incoming[l.LeaseKey] = now
		return false
	}
	return now.Sub(since) > w.cfg.handOffMax+w.cfg.failover
}

// discover takes the leases this worker owns but does not hold, found as
// the KCL 3.x DynamoDBLeaseDiscoverer finds them: the keys from the
// LeaseOwnerToLeaseKeyIndex (lease.Store.ListLeaseKeysForWorker), then each
// lease read again, as the index lags. So a lease a KCL 3.x leader assigns
// to this worker, or hands over to it, is picked up without a scan of the
// table. It serves the rounds that follow a leader; the other rounds scan
// the table anyway and take the same leases from the scan (takeOwned).
func (w *worker) discover(ctx context.Context) {
	opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
	keys, err := w.cfg.store.ListLeaseKeysForWorker(opCtx, w.id)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("listing this worker's leases failed", "err", err)
		}
		return
	}
	held := w.heldKeys()
	for _, key := range keys {
		if held[key] {
			continue
		}
		if w.cfg.maxLeases > 0 && len(held) >= w.cfg.maxLeases {
			return
		}
		opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
		l, err := w.cfg.store.GetLease(opCtx, key)
		cancel()
		if err != nil || !w.mineToTake(l) {
			continue
		}
		if w.takeLease(ctx, l) {
			held[key] = true
		}
	}
}

// takeOwned is discover over a scan of the table: it takes the leases of
// all that this worker owns but does not hold. So a hand-off completes as
// soon as the holder lets go.
func (w *worker) takeOwned(ctx context.Context, all []lease.Lease) {
	held := w.heldKeys()
	for _, l := range all {
		if held[l.LeaseKey] || !w.mineToTake(l) {
			continue
		}
		if w.cfg.maxLeases > 0 && len(held) >= w.cfg.maxLeases {
			return
		}
		if w.takeLease(ctx, l) {
			held[l.LeaseKey] = true
		}
	}
}

// mineToTake reports whether l is this worker's to take at once: it owns
// it, no hand-off to it is pending (the holder has let go), and the shard
// is not finished.
func (w *worker) mineToTake(l lease.Lease) bool {
	return l.LeaseOwner == w.id && !l.HandOffRequested() && !l.Checkpoint.IsShardEnd() && w.follows(l)
}
