package lease

import (
	"context"
	"errors"
)

// Errors every Store returns for its own conditions. Check them with
// errors.Is; the error also says which lease and which condition.
var (
	// ErrConditionFailed reports that a conditional write found the lease
	// in another state than the caller expected (another counter, owner or
	// holder, or no lease at all). Nothing was written.
	ErrConditionFailed = errors.New("lease: condition failed")
	// ErrLeaseNotFound reports that no lease has the key. From a
	// conditional write it comes together with ErrConditionFailed.
	ErrLeaseNotFound = errors.New("lease: lease not found")
	// ErrTableNotFound reports that the lease table does not exist; call
	// CreateTableIfNotExists first.
	ErrTableNotFound = errors.New("lease: lease table not found")
	// ErrThrottled reports that the backing store refused the request for
	// lack of capacity (DynamoDB throttling); retrying later may succeed.
	ErrThrottled = errors.New("lease: request throttled")
	// ErrInvalidArgument reports a call with an argument no store accepts
	// (an empty lease key or owner, a zero checkpoint).
	ErrInvalidArgument = errors.New("lease: invalid argument")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("lease: store closed")
	// ErrCorruptLease reports stored items that cannot be read as leases.
	// ListLeases leaves them out and returns the good leases together with
	// an error matching ErrCorruptLease that names them.
	ErrCorruptLease = errors.New("lease: corrupt lease item")
)

// Store is a lease table. Its operations mirror the Java KCL's
// LeaseRefresher and are safe for concurrent use; every write is atomic and
// conditional as documented on each method, and a write whose condition
// fails changes nothing and returns an error matching ErrConditionFailed.
//
// Methods that return a Lease return the lease as stored after the write.
type Store interface {
	// CreateTableIfNotExists creates the lease table when it is missing and
	// reports whether this call created it.
	CreateTableIfNotExists(ctx context.Context) (created bool, err error)
	// TableExists reports whether the lease table exists and is usable.
	TableExists(ctx context.Context) (bool, error)
	// WaitUntilTableExists polls until the table exists or ctx ends.
	WaitUntilTableExists(ctx context.Context) error
	// IsTableEmpty reports whether the table holds no lease.
	IsTableEmpty(ctx context.Context) (bool, error)

	// CreateLeaseIfNotExists writes l when no lease has its key and reports
	// whether it did; an existing lease is left untouched.
	CreateLeaseIfNotExists(ctx context.Context, l Lease) (created bool, err error)
	// GetLease returns the lease with the key, or ErrLeaseNotFound.
	GetLease(ctx context.Context, key string) (Lease, error)
	// ListLeases returns every lease, sorted by key. Items that cannot be
	// decoded are left out: the good leases come back with an error matching
	// ErrCorruptLease, so one bad item does not stop every worker.
	ListLeases(ctx context.Context) ([]Lease, error)
	// ListLeaseKeysForWorker returns the keys of the leases whose LeaseOwner
	// is worker, sorted (the KCL 3.x listLeaseKeysForWorker). A lease being
	// handed over to worker is among them, as its LeaseOwner is worker
	// already. lease/dynamo answers from the LeaseOwnerToLeaseKeyIndex GSI,
	// which is eventually consistent, as the KCL does: read a lease before
	// acting on it.
	ListLeaseKeysForWorker(ctx context.Context, worker string) ([]string, error)

	// RenewLease adds one to the counter.
	// Condition: LeaseCounter == counter and Holder() == owner.
	RenewLease(ctx context.Context, key, owner string, counter int64) (Lease, error)
	// TakeLease makes newOwner the owner: LeaseOwner = newOwner, counter
	// plus one, CheckpointOwner removed (a hand-off in progress is
	// cancelled), and OwnerSwitchesSinceCheckpoint plus one when
	// expectedOwner is set and differs from newOwner.
	// Condition: LeaseCounter == counter and LeaseOwner == expectedOwner
	// (empty expectedOwner: the lease has no owner).
	TakeLease(ctx context.Context, key, expectedOwner string, counter int64, newOwner string) (Lease, error)
	// HandOffLease asks owner to hand the lease over to newOwner gracefully
	// (the KCL 3.x initiateGracefulLeaseHandoff): LeaseOwner = newOwner,
	// CheckpointOwner = owner, so owner stays the holder until it has
	// checkpointed and evicts itself. The counter is unchanged, so owner's
	// renewals go on undisturbed.
	// Condition: LeaseOwner == owner and no hand-off is in progress.
	HandOffLease(ctx context.Context, key, owner, newOwner string) (Lease, error)
	// EvictLease lets go of a lease (the KCL's evictLease, used both to
	// release a lease on shutdown and to drop it): during a hand-off it
	// removes CheckpointOwner, so LeaseOwner holds the lease at once;
	// otherwise it removes LeaseOwner. The counter gains one.
	// Condition: Holder() == owner.
	EvictLease(ctx context.Context, key, owner string) (Lease, error)
	// UpdateCheckpoint commits a checkpoint (the KCL's updateLease as its
	// checkpointer uses it): Checkpoint = cp, the pending checkpoint and its
	// state removed, OwnerSwitchesSinceCheckpoint = 0, counter plus one.
	// Condition: LeaseCounter == counter and Holder() == owner.
	UpdateCheckpoint(ctx context.Context, key, owner string, counter int64, cp Checkpoint) (Lease, error)
	// PrepareCheckpoint records a two-phase checkpoint's first phase:
	// PendingCheckpoint = pending, PendingCheckpointState = state (nil
	// removes it), counter plus one; Checkpoint is unchanged.
	// Condition: LeaseCounter == counter and Holder() == owner.
	PrepareCheckpoint(ctx context.Context, key, owner string, counter int64, pending Checkpoint, state []byte) (Lease, error)
	// UpdateLeaseMeta writes shard metadata that does not belong to the
	// owner (the KCL's updateLeaseWithMetaInfo): each field of u that is set
	// replaces the stored one. The counter is unchanged.
	// Condition: the lease exists.
	UpdateLeaseMeta(ctx context.Context, key string, u MetaUpdate) (Lease, error)
	// DeleteLease removes the lease unconditionally; deleting a missing
	// lease is not an error.
	DeleteLease(ctx context.Context, key string) error

	// Close releases the store's resources. It does not release leases.
	Close() error
}

// MetaUpdate lists the metadata UpdateLeaseMeta writes. Unset fields are
// left as stored.
type MetaUpdate struct {
	// ChildShardIDs, when not empty, replaces the childShardIds set.
	ChildShardIDs []string
	// StartingHashKey and EndingHashKey, when both are set, replace the
	// hash key range.
	StartingHashKey string
	EndingHashKey   string
}

// IsEmpty reports whether u would change nothing.
func (u MetaUpdate) IsEmpty() bool {
	return len(NormalizeSet(u.ChildShardIDs)) == 0 && (u.StartingHashKey == "" || u.EndingHashKey == "")
}
