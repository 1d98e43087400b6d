package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
)

// A worker takes a lease, renews it, checkpoints, and loses it to a worker
// that steals it; the old owner's next write fails its condition.
func Example() {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	if _, err := s.CreateTableIfNotExists(ctx); err != nil {
		panic(err)
	}
	_, _ = s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000000", Checkpoint: lease.TrimHorizon})

	l, _ := s.TakeLease(ctx, "shardId-000000000000", "", 0, "worker-a")
	l, _ = s.RenewLease(ctx, l.LeaseKey, "worker-a", l.LeaseCounter)
	l, _ = s.UpdateCheckpoint(ctx, l.LeaseKey, "worker-a", l.LeaseCounter,
		lease.Checkpoint{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 2})
	fmt.Println(l.LeaseOwner, l.LeaseCounter, l.Checkpoint)

	stolen, _ := s.TakeLease(ctx, l.LeaseKey, "worker-a", l.LeaseCounter, "worker-b")
	fmt.Println(stolen.LeaseOwner, stolen.LeaseCounter, stolen.OwnerSwitchesSinceCheckpoint)

	_, err := s.RenewLease(ctx, l.LeaseKey, "worker-a", l.LeaseCounter)
	fmt.Println(errors.Is(err, lease.ErrConditionFailed))
	// Output:
	// worker-a 3 49590338271490256608559692538361571095921575989136588898/2
	// worker-b 4 1
	// true
}
