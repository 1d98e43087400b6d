// Package rules holds the conditions and effects of the lease writes, shared
// by the stores that evaluate them in Go (memory and sqlite), and the
// argument checks and the wait for the table shared by every store.
package rules

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ksp-project/ksp/lease"
)

// Mutation checks a write's condition against the stored lease and, when it
// holds, applies the write to it. It returns an error matching
// lease.ErrConditionFailed, and leaves cur untouched, when it does not.
type Mutation func(cur *lease.Lease) error

// CheckKey rejects an empty lease key.
func CheckKey(op, key string) error {
	if key == "" {
		return fmt.Errorf("%w: %s: lease key is empty", lease.ErrInvalidArgument, op)
	}
	return nil
}

// CheckOwner rejects an empty worker id.
func CheckOwner(op, key, what, owner string) error {
	if owner == "" {
		return fmt.Errorf("%w: %s %q: %s is empty", lease.ErrInvalidArgument, op, key, what)
	}
	return nil
}

// CheckWorker rejects an empty worker id given to ListLeaseKeysForWorker.
func CheckWorker(worker string) error {
	if worker == "" {
		return fmt.Errorf("%w: list lease keys for worker: worker id is empty", lease.ErrInvalidArgument)
	}
	return nil
}

// CheckCheckpoint rejects a checkpoint without a sequence number.
func CheckCheckpoint(op, key string, cp lease.Checkpoint) error {
	if cp.SequenceNumber == "" {
		return fmt.Errorf("%w: %s %q: checkpoint has no sequence number", lease.ErrInvalidArgument, op, key)
	}
	if cp.SubSequenceNumber < 0 {
		return fmt.Errorf("%w: %s %q: sub-sequence number %d is negative", lease.ErrInvalidArgument, op, key, cp.SubSequenceNumber)
	}
	return nil
}

// CheckLease rejects a lease that cannot be created.
func CheckLease(op string, l lease.Lease) error {
	if err := CheckKey(op, l.LeaseKey); err != nil {
		return err
	}
	if l.LeaseCounter < 0 || l.OwnerSwitchesSinceCheckpoint < 0 {
		return fmt.Errorf("%w: %s %q: negative counter", lease.ErrInvalidArgument, op, l.LeaseKey)
	}
	if (l.StartingHashKey == "") != (l.EndingHashKey == "") {
		return fmt.Errorf("%w: %s %q: only one end of the hash key range is set", lease.ErrInvalidArgument, op, l.LeaseKey)
	}
	return nil
}

// NotFound is the error of a conditional write on a missing lease: it matches
// both lease.ErrConditionFailed and lease.ErrLeaseNotFound.
func NotFound(op, key string) error {
	return fmt.Errorf("%w: %w: %s %q", lease.ErrConditionFailed, lease.ErrLeaseNotFound, op, key)
}

// Failed is the error of a write whose condition does not hold.
func Failed(op, key, format string, args ...any) error {
	return fmt.Errorf("%w: %s %q: %s", lease.ErrConditionFailed, op, key, fmt.Sprintf(format, args...))
}

func checkCounter(op string, cur *lease.Lease, counter int64) error {
	if cur.LeaseCounter != counter {
		return Failed(op, cur.LeaseKey, "leaseCounter is %d, expected %d", cur.LeaseCounter, counter)
	}
	return nil
}

func checkHolder(op string, cur *lease.Lease, owner string) error {
	if h := cur.Holder(); h != owner {
		return Failed(op, cur.LeaseKey, "held by %q, expected %q", h, owner)
	}
	return nil
}

// Renew is RenewLease's condition and effect.
func Renew(owner string, counter int64) Mutation {
	return func(cur *lease.Lease) error {
		if err := checkCounter("renew", cur, counter); err != nil {
			return err
		}
		if err := checkHolder("renew", cur, owner); err != nil {
			return err
		}
		cur.LeaseCounter++
		return nil
	}
}

// Take is TakeLease's condition and effect.
func Take(expectedOwner string, counter int64, newOwner string) Mutation {
	return func(cur *lease.Lease) error {
		if err := checkCounter("take", cur, counter); err != nil {
			return err
		}
		if cur.LeaseOwner != expectedOwner {
			return Failed("take", cur.LeaseKey, "owned by %q, expected %q", cur.LeaseOwner, expectedOwner)
		}
		if TakeSwitchesOwner(expectedOwner, newOwner) {
			cur.OwnerSwitchesSinceCheckpoint++
		}
		cur.LeaseOwner = newOwner
		cur.CheckpointOwner = ""
		cur.LeaseCounter++
		return nil
	}
}

// TakeSwitchesOwner reports whether a take from expectedOwner to newOwner
// counts as an owner switch (as the KCL counts it: taking an unowned lease
// or one's own lease does not).
func TakeSwitchesOwner(expectedOwner, newOwner string) bool {
	return expectedOwner != "" && expectedOwner != newOwner
}

// HandOff is HandOffLease's condition and effect.
func HandOff(owner, newOwner string) Mutation {
	return func(cur *lease.Lease) error {
		if cur.LeaseOwner != owner {
			return Failed("hand off", cur.LeaseKey, "owned by %q, expected %q", cur.LeaseOwner, owner)
		}
		if cur.CheckpointOwner != "" {
			return Failed("hand off", cur.LeaseKey, "a hand-off from %q is in progress", cur.CheckpointOwner)
		}
		cur.LeaseOwner = newOwner
		cur.CheckpointOwner = owner
		return nil
	}
}

// CheckHandOff rejects a hand-off with an empty worker id or to the owner
// itself.
func CheckHandOff(key, owner, newOwner string) error {
	if err := CheckKey("hand off", key); err != nil {
		return err
	}
	if err := CheckOwner("hand off", key, "owner", owner); err != nil {
		return err
	}
	if err := CheckOwner("hand off", key, "new owner", newOwner); err != nil {
		return err
	}
	if owner == newOwner {
		return fmt.Errorf("%w: hand off %q: new owner %q is the owner", lease.ErrInvalidArgument, key, newOwner)
	}
	return nil
}

// Evict is EvictLease's condition and effect.
func Evict(owner string) Mutation {
	return func(cur *lease.Lease) error {
		if err := checkHolder("evict", cur, owner); err != nil {
			return err
		}
		if cur.CheckpointOwner != "" {
			cur.CheckpointOwner = ""
		} else {
			cur.LeaseOwner = ""
		}
		cur.LeaseCounter++
		return nil
	}
}

// Checkpoint is UpdateCheckpoint's condition and effect.
func Checkpoint(owner string, counter int64, cp lease.Checkpoint) Mutation {
	return func(cur *lease.Lease) error {
		if err := checkCounter("checkpoint", cur, counter); err != nil {
			return err
		}
		if err := checkHolder("checkpoint", cur, owner); err != nil {
			return err
		}
		cur.Checkpoint = cp
		cur.PendingCheckpoint = lease.Checkpoint{}
		cur.PendingCheckpointState = nil
		cur.OwnerSwitchesSinceCheckpoint = 0
		cur.LeaseCounter++
		return nil
	}
}

// Prepare is PrepareCheckpoint's condition and effect.
func Prepare(owner string, counter int64, pending lease.Checkpoint, state []byte) Mutation {
	return func(cur *lease.Lease) error {
		if err := checkCounter("prepare checkpoint", cur, counter); err != nil {
			return err
		}
		if err := checkHolder("prepare checkpoint", cur, owner); err != nil {
			return err
		}
		cur.PendingCheckpoint = pending
		cur.PendingCheckpointState = nil
		if len(state) > 0 {
			cur.PendingCheckpointState = bytes.Clone(state)
		}
		cur.LeaseCounter++
		return nil
	}
}

// Meta is UpdateLeaseMeta's effect; its only condition is that the lease
// exists, which the caller checks.
func Meta(u lease.MetaUpdate) Mutation {
	return func(cur *lease.Lease) error {
		if ids := lease.NormalizeSet(u.ChildShardIDs); len(ids) > 0 {
			cur.ChildShardIDs = ids
		}
		if u.StartingHashKey != "" && u.EndingHashKey != "" {
			cur.StartingHashKey = u.StartingHashKey
			cur.EndingHashKey = u.EndingHashKey
		}
		return nil
	}
}

// Writes implements the conditional writes of lease.Store over a store's
// Mutate (which applies one Mutation to the stored lease with the given key,
// atomically, and returns the lease as stored afterwards), checking arguments
// first, so every store that applies rules applies the same ones.
type Writes struct {
	Mutate func(ctx context.Context, op, key string, m Mutation) (lease.Lease, error)
}

// RenewLease implements lease.Store.
func (w Writes) RenewLease(ctx context.Context, key, owner string, counter int64) (lease.Lease, error) {
	if err := CheckOwner("renew", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	return w.Mutate(ctx, "renew", key, Renew(owner, counter))
}

// TakeLease implements lease.Store.
func (w Writes) TakeLease(ctx context.Context, key, expectedOwner string, counter int64, newOwner string) (lease.Lease, error) {
	if err := CheckOwner("take", key, "new owner", newOwner); err != nil {
		return lease.Lease{}, err
	}
	return w.Mutate(ctx, "take", key, Take(expectedOwner, counter, newOwner))
}

// HandOffLease implements lease.Store.
func (w Writes) HandOffLease(ctx context.Context, key, owner, newOwner string) (lease.Lease, error) {
	if err := CheckHandOff(key, owner, newOwner); err != nil {
		return lease.Lease{}, err
	}
	return w.Mutate(ctx, "hand off", key, HandOff(owner, newOwner))
}

// EvictLease implements lease.Store.
func (w Writes) EvictLease(ctx context.Context, key, owner string) (lease.Lease, error) {
	if err := CheckOwner("evict", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	return w.Mutate(ctx, "evict", key, Evict(owner))
}

// UpdateCheckpoint implements lease.Store.
func (w Writes) UpdateCheckpoint(ctx context.Context, key, owner string, counter int64, cp lease.Checkpoint) (lease.Lease, error) {
	if err := CheckOwner("checkpoint", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	if err := CheckCheckpoint("checkpoint", key, cp); err != nil {
		return lease.Lease{}, err
	}
	return w.Mutate(ctx, "checkpoint", key, Checkpoint(owner, counter, cp))
}

// PrepareCheckpoint implements lease.Store.
func (w Writes) PrepareCheckpoint(ctx context.Context, key, owner string, counter int64, pending lease.Checkpoint, state []byte) (lease.Lease, error) {
	if err := CheckOwner("prepare checkpoint", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	if err := CheckCheckpoint("prepare checkpoint", key, pending); err != nil {
		return lease.Lease{}, err
	}
	return w.Mutate(ctx, "prepare checkpoint", key, Prepare(owner, counter, pending, state))
}

// UpdateLeaseMeta implements lease.Store.
func (w Writes) UpdateLeaseMeta(ctx context.Context, key string, u lease.MetaUpdate) (lease.Lease, error) {
	return w.Mutate(ctx, "update meta", key, Meta(u))
}
