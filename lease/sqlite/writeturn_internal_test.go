package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// A write queued behind this process's write in flight gives up when its
// context ends, as a renewal must at its deadline (a mutex would keep it
// waiting for the whole queue), and leaves the lease as it was; once the
// turn is free, writes go through.
func TestQueuedWriteEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "leases.db"), "app")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateTableIfNotExists(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000000", Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	l, err := s.TakeLease(ctx, "shardId-000000000000", "", 0, "w1")
	if err != nil {
		t.Fatal(err)
	}

	if err := s.lockWrite(ctx); err != nil { // a write in flight
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, renewErr := s.RenewLease(short, l.LeaseKey, "w1", l.LeaseCounter)
	delErr := s.DeleteLease(short, l.LeaseKey)
	s.unlockWrite()
	if !errors.Is(renewErr, context.DeadlineExceeded) {
		t.Fatalf("renewal queued behind a write in flight: %v, want its deadline", renewErr)
	}
	if !errors.Is(delErr, context.DeadlineExceeded) {
		t.Fatalf("delete queued behind a write in flight: %v, want its deadline", delErr)
	}
	cur, err := s.GetLease(ctx, l.LeaseKey)
	if err != nil || cur.LeaseCounter != l.LeaseCounter {
		t.Fatalf("after the renewal that gave up: %+v, %v; want counter %d", cur, err, l.LeaseCounter)
	}
	if _, err := s.RenewLease(ctx, l.LeaseKey, "w1", l.LeaseCounter); err != nil {
		t.Fatalf("renewal with the turn free: %v", err)
	}
}
