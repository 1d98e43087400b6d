package leaseview

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/lease"
)

// ErrLiveOwner reports that a worker renewed the lease while Reset watched
// it: resetting under a live owner would make it lose the lease mid-batch.
var ErrLiveOwner = errors.New("the lease has a live owner")

// ResetOptions say how Reset treats the lease's holder.
type ResetOptions struct {
	// Worker is the owner Reset writes while it holds the lease (default
	// "ksp-leases-reset").
	Worker string
	// Watch is how long Reset watches a held lease's counter before it
	// decides its holder is dead: the application's failover time, since a
	// live holder renews within it.
	Watch time.Duration
	// Force resets a lease whose holder is alive: the holder's next renewal
	// or checkpoint fails and it lets the shard go.
	Force bool
}

// maxForcedTries bounds Reset's retries when a live holder's renewal
// changes the counter between its read and its conditional take.
const maxForcedTries = 5

// Reset sets the checkpoint of the lease of shard (a lease key or the shard
// id of one) to cp. Each of its writes is conditional on the lease counter:
// it takes the lease from its holder (or from nobody), writes the
// checkpoint as the new owner and lets the lease go, so a worker takes it
// and resumes from cp. A lease whose counter moved within o.Watch is refused
// with ErrLiveOwner unless o.Force. When a condition fails nothing more is
// written; a failure after the take leaves the lease owned by o.Worker,
// which nobody renews, so it expires and workers take it as usual.
// It returns the lease before and after.
func Reset(ctx context.Context, store lease.Store, shard string, cp lease.Checkpoint, o ResetOptions) (before, after lease.Lease, err error) {
	if o.Worker == "" {
		o.Worker = "ksp-leases-reset"
	}
	key, err := findKey(ctx, store, shard)
	if err != nil {
		return lease.Lease{}, lease.Lease{}, err
	}
	before, err = store.GetLease(ctx, key)
	if err != nil {
		return lease.Lease{}, lease.Lease{}, err
	}
	if h := before.Holder(); h != "" && !o.Force {
		if err := backoff.Sleep(ctx, o.Watch); err != nil {
			return before, lease.Lease{}, err
		}
		now, err := store.GetLease(ctx, key)
		if err != nil {
			return before, lease.Lease{}, err
		}
		if now.LeaseCounter != before.LeaseCounter || now.Holder() != h {
			return before, lease.Lease{}, fmt.Errorf("%s renewed the lease of %s within %v (counter %d → %d): %w",
				now.Holder(), shard, o.Watch, before.LeaseCounter, now.LeaseCounter, ErrLiveOwner)
		}
	}
	cur := before
	var taken lease.Lease
	for try := 1; ; try++ {
		taken, err = store.TakeLease(ctx, key, cur.LeaseOwner, cur.LeaseCounter, o.Worker)
		if err == nil {
			break
		}
		if !errors.Is(err, lease.ErrConditionFailed) || !o.Force || try == maxForcedTries {
			return before, lease.Lease{}, fmt.Errorf("taking the lease of %s (nothing written): %w", shard, err)
		}
		if cur, err = store.GetLease(ctx, key); err != nil {
			return before, lease.Lease{}, err
		}
	}
	after, err = store.UpdateCheckpoint(ctx, key, o.Worker, taken.LeaseCounter, cp)
	if err != nil {
		err = fmt.Errorf("writing the checkpoint of %s: %w", shard, err)
	}
	// Let go even after a failed write, so workers need not wait for expiry.
	if released, rerr := store.EvictLease(ctx, key, o.Worker); rerr == nil {
		after = released
	} else if err == nil {
		err = fmt.Errorf("checkpoint of %s written, but releasing the lease failed (it expires after the failover time): %w", shard, rerr)
	}
	return before, after, err
}

// findKey is the lease key of shard: shard itself, or the key whose shard
// id it is (multi-stream keys).
func findKey(ctx context.Context, store lease.Store, shard string) (string, error) {
	leases, err := store.ListLeases(ctx)
	if errors.Is(err, lease.ErrTableNotFound) {
		return "", ErrNoTable
	}
	if err != nil && !errors.Is(err, lease.ErrCorruptLease) {
		return "", err
	}
	var keys []string
	for _, l := range leases {
		if l.LeaseKey == shard {
			return shard, nil
		}
		if l.ShardID() == shard {
			keys = append(keys, l.LeaseKey)
		}
	}
	switch len(keys) {
	case 0:
		return "", fmt.Errorf("%w: no lease for shard %s", lease.ErrLeaseNotFound, shard)
	case 1:
		return keys[0], nil
	}
	return "", fmt.Errorf("shard %s has a lease in several streams (%v): give the whole lease key", shard, keys)
}
