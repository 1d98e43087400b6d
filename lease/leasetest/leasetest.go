// Package leasetest is the conformance suite every lease.Store passes. A
// store's tests call Run with a constructor; the suite checks each
// operation's condition and effect, the error sentinels, concurrent writers
// and the round trip of every attribute.
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// Run runs the suite. newStore must return a new, independent store whose
// lease table does not exist yet; the suite creates it. Run closes the
// stores it opens.
func Run(t *testing.T, newStore func(t *testing.T) lease.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s lease.Store)
	}{
		{"CreateLeaseIfNotExistsTwice", testCreateTwice},
		{"RoundTripEveryAttribute", testRoundTrip},
		{"RenewConditions", testRenew},
		{"TakeAndSteal", testTake},
		{"Evict", testEvict},
		{"CheckpointConditions", testCheckpoint},
		{"PrepareCheckpoint", testPrepare},
		{"GracefulHandOff", testHandOff},
		{"ChildShardIDsAndHashRange", testMeta},
		{"Delete", testDelete},
		{"List", testList},
		{"ListLeaseKeysForWorker", testListForWorker},
		{"ConcurrentTakers", testConcurrentTakers},
		{"ConcurrentRenewers", testConcurrentRenewers},
		{"MissingLease", testMissing},
		{"InvalidArguments", testInvalid},
	}
	t.Run("TableLifecycle", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		testTable(t, s)
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			ctx := context.Background()
			if _, err := s.CreateTableIfNotExists(ctx); err != nil {
				t.Fatalf("CreateTableIfNotExists: %v", err)
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := s.WaitUntilTableExists(wctx); err != nil {
				t.Fatalf("WaitUntilTableExists: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

func testTable(t *testing.T, s lease.Store) {
	ok, err := s.TableExists(ctx)
	if err != nil || ok {
		t.Fatalf("TableExists before create = %v, %v; want false, nil", ok, err)
	}
	if _, err := s.ListLeases(ctx); !errors.Is(err, lease.ErrTableNotFound) {
		t.Fatalf("ListLeases before create: err = %v, want ErrTableNotFound", err)
	}
	if _, err := s.GetLease(ctx, "shardId-000000000000"); !errors.Is(err, lease.ErrTableNotFound) {
		t.Fatalf("GetLease before create: err = %v, want ErrTableNotFound", err)
	}
	if _, err := s.CreateLeaseIfNotExists(ctx, newLease("shardId-000000000000")); !errors.Is(err, lease.ErrTableNotFound) {
		t.Fatalf("CreateLeaseIfNotExists before create: err = %v, want ErrTableNotFound", err)
	}
	created, err := s.CreateTableIfNotExists(ctx)
	if err != nil || !created {
		t.Fatalf("first CreateTableIfNotExists = %v, %v; want true, nil", created, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.WaitUntilTableExists(wctx); err != nil {
		t.Fatalf("WaitUntilTableExists: %v", err)
	}
	created, err = s.CreateTableIfNotExists(ctx)
	if err != nil || created {
		t.Fatalf("second CreateTableIfNotExists = %v, %v; want false, nil", created, err)
	}
	if ok, err := s.TableExists(ctx); err != nil || !ok {
		t.Fatalf("TableExists after create = %v, %v; want true, nil", ok, err)
	}
	if empty, err := s.IsTableEmpty(ctx); err != nil || !empty {
		t.Fatalf("IsTableEmpty = %v, %v; want true, nil", empty, err)
	}
	mustCreate(t, s, newLease("shardId-000000000000"))
	if empty, err := s.IsTableEmpty(ctx); err != nil || empty {
		t.Fatalf("IsTableEmpty after create lease = %v, %v; want false, nil", empty, err)
	}
}

func newLease(key string) lease.Lease {
	return lease.Lease{LeaseKey: key, Checkpoint: lease.TrimHorizon}
}

func mustCreate(t *testing.T, s lease.Store, l lease.Lease) {
	t.Helper()
	created, err := s.CreateLeaseIfNotExists(ctx, l)
	if err != nil || !created {
		t.Fatalf("CreateLeaseIfNotExists(%q) = %v, %v; want true, nil", l.LeaseKey, created, err)
	}
}

func mustGet(t *testing.T, s lease.Store, key string) lease.Lease {
	t.Helper()
	l, err := s.GetLease(ctx, key)
	if err != nil {
		t.Fatalf("GetLease(%q): %v", key, err)
	}
	return l
}

// equal compares leases, treating nil and empty slices alike.
func equal(t *testing.T, what string, got, want lease.Lease) {
	t.Helper()
	got, want = got.Normalize(), want.Normalize()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// stored returns a check that a write succeeded and returned the lease as
// it is now stored: stored(t, s, "renew")(s.RenewLease(...)).
func stored(t *testing.T, s lease.Store, op string) func(lease.Lease, error) lease.Lease {
	return func(got lease.Lease, err error) lease.Lease {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		equal(t, op+" returned lease vs stored", got, mustGet(t, s, got.LeaseKey))
		return got
	}
}

func wantCondFailed(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, lease.ErrConditionFailed) {
		t.Fatalf("%s: err = %v, want ErrConditionFailed", op, err)
	}
	if errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("%s: err = %v also matches ErrLeaseNotFound for an existing lease", op, err)
	}
}

// unchanged checks that a failed write left the lease as it was.
func unchanged(t *testing.T, s lease.Store, before lease.Lease) {
	t.Helper()
	equal(t, "lease after a failed write", mustGet(t, s, before.LeaseKey), before)
}

func testCreateTwice(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000001")
	l.LeaseOwner = "w1"
	l.LeaseCounter = 7
	mustCreate(t, s, l)
	other := newLease("shardId-000000000001")
	other.LeaseOwner = "w2"
	other.Checkpoint = lease.Latest
	created, err := s.CreateLeaseIfNotExists(ctx, other)
	if err != nil || created {
		t.Fatalf("second CreateLeaseIfNotExists = %v, %v; want false, nil", created, err)
	}
	equal(t, "lease after second create", mustGet(t, s, l.LeaseKey), l)
}

// FullLease returns a lease with every attribute set, for round-trip tests.
func FullLease(key string) lease.Lease {
	return lease.Lease{
		LeaseKey:                     key,
		LeaseOwner:                   "worker-a",
		LeaseCounter:                 42,
		OwnerSwitchesSinceCheckpoint: 3,
		Checkpoint:                   lease.Checkpoint{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 7},
		PendingCheckpoint:            lease.Checkpoint{SequenceNumber: "49590338271490256608559692540925702759324208523137515618", SubSequenceNumber: 2},
		PendingCheckpointState:       []byte{0, 1, 2, 0xff, 'x'},
		ParentShardIDs:               []string{"shardId-000000000002", "shardId-000000000001"},
		ChildShardIDs:                []string{"shardId-000000000009", "shardId-000000000008"},
		StartingHashKey:              "0",
		EndingHashKey:                "340282366920938463463374607431768211455",
		ThroughputKBps:               123.25,
		CheckpointOwner:              "worker-b",
	}
}

func testRoundTrip(t *testing.T, s lease.Store) {
	full := FullLease("shardId-000000000003")
	mustCreate(t, s, full)
	got := mustGet(t, s, full.LeaseKey)
	equal(t, "round trip", got, full)
	if want := []string{"shardId-000000000001", "shardId-000000000002"}; !reflect.DeepEqual(got.ParentShardIDs, want) {
		t.Fatalf("ParentShardIDs = %q, want sorted %q", got.ParentShardIDs, want)
	}
	minimal := lease.Lease{LeaseKey: "app:stream:1:shardId-000000000004"}
	mustCreate(t, s, minimal)
	equal(t, "minimal round trip", mustGet(t, s, minimal.LeaseKey), minimal)
	ls, err := s.ListLeases(ctx)
	if err != nil || len(ls) != 2 {
		t.Fatalf("ListLeases = %d leases, %v; want 2", len(ls), err)
	}
	equal(t, "listed minimal", ls[0], minimal)
	equal(t, "listed full", ls[1], full)
}

func testRenew(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000010")
	mustCreate(t, s, l)
	_, err := s.RenewLease(ctx, l.LeaseKey, "w1", 0)
	wantCondFailed(t, "renew of an unowned lease", err)
	cur := stored(t, s, "take")(s.TakeLease(ctx, l.LeaseKey, "", 0, "w1"))
	if cur.LeaseCounter != 1 || cur.LeaseOwner != "w1" {
		t.Fatalf("after take: %+v", cur)
	}
	cur = stored(t, s, "renew")(s.RenewLease(ctx, l.LeaseKey, "w1", 1))
	if cur.LeaseCounter != 2 || cur.LeaseOwner != "w1" || cur.OwnerSwitchesSinceCheckpoint != 0 {
		t.Fatalf("after renew: %+v", cur)
	}
	_, err = s.RenewLease(ctx, l.LeaseKey, "w1", 1)
	wantCondFailed(t, "renew with a stale counter", err)
	_, err = s.RenewLease(ctx, l.LeaseKey, "w1", 3)
	wantCondFailed(t, "renew with a future counter", err)
	_, err = s.RenewLease(ctx, l.LeaseKey, "w2", 2)
	wantCondFailed(t, "renew by another worker", err)
	unchanged(t, s, cur)
	cur = stored(t, s, "second renew")(s.RenewLease(ctx, l.LeaseKey, "w1", 2))
	if cur.LeaseCounter != 3 {
		t.Fatalf("counter after second renew = %d, want 3", cur.LeaseCounter)
	}
	if !cur.Checkpoint.IsTrimHorizon() {
		t.Fatalf("renew changed the checkpoint: %v", cur.Checkpoint)
	}
}

func testTake(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000020")
	l.LeaseCounter = 5
	mustCreate(t, s, l)
	_, err := s.TakeLease(ctx, l.LeaseKey, "", 4, "w1")
	wantCondFailed(t, "take with a stale counter", err)
	_, err = s.TakeLease(ctx, l.LeaseKey, "w9", 5, "w1")
	wantCondFailed(t, "take from the wrong owner", err)
	unchanged(t, s, l)

	cur := stored(t, s, "take unowned")(s.TakeLease(ctx, l.LeaseKey, "", 5, "w1"))
	if cur.LeaseOwner != "w1" || cur.LeaseCounter != 6 || cur.OwnerSwitchesSinceCheckpoint != 0 {
		t.Fatalf("after taking an unowned lease: %+v (want owner w1, counter 6, switches 0)", cur)
	}
	_, err = s.TakeLease(ctx, l.LeaseKey, "", 6, "w2")
	wantCondFailed(t, "take as if unowned", err)

	cur = stored(t, s, "steal")(s.TakeLease(ctx, l.LeaseKey, "w1", 6, "w2"))
	if cur.LeaseOwner != "w2" || cur.LeaseCounter != 7 || cur.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("after steal: %+v (want owner w2, counter 7, switches 1)", cur)
	}
	_, err = s.RenewLease(ctx, l.LeaseKey, "w1", 6)
	wantCondFailed(t, "renew by the previous owner", err)

	cur = stored(t, s, "take own lease")(s.TakeLease(ctx, l.LeaseKey, "w2", 7, "w2"))
	if cur.LeaseOwner != "w2" || cur.LeaseCounter != 8 || cur.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("after taking one's own lease: %+v (want counter 8, switches still 1)", cur)
	}
	cur = stored(t, s, "steal back")(s.TakeLease(ctx, l.LeaseKey, "w2", 8, "w1"))
	if cur.OwnerSwitchesSinceCheckpoint != 2 {
		t.Fatalf("switches after second steal = %d, want 2", cur.OwnerSwitchesSinceCheckpoint)
	}
	if !cur.Checkpoint.IsTrimHorizon() {
		t.Fatalf("take changed the checkpoint: %v", cur.Checkpoint)
	}
}

func testEvict(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000030")
	l.LeaseOwner = "w1"
	l.LeaseCounter = 10
	l.Checkpoint = lease.Checkpoint{SequenceNumber: "100", SubSequenceNumber: 1}
	mustCreate(t, s, l)
	_, err := s.EvictLease(ctx, l.LeaseKey, "w2")
	wantCondFailed(t, "evict by a non-owner", err)
	unchanged(t, s, l)
	cur := stored(t, s, "evict")(s.EvictLease(ctx, l.LeaseKey, "w1"))
	want := l
	want.LeaseOwner = ""
	want.LeaseCounter = 11
	equal(t, "after evict", cur, want)
	_, err = s.EvictLease(ctx, l.LeaseKey, "w1")
	wantCondFailed(t, "second evict", err)
	_, err = s.RenewLease(ctx, l.LeaseKey, "w1", 10)
	wantCondFailed(t, "renew after evict", err)
	cur = stored(t, s, "take after evict")(s.TakeLease(ctx, l.LeaseKey, "", 11, "w2"))
	if cur.LeaseOwner != "w2" || cur.OwnerSwitchesSinceCheckpoint != 0 {
		t.Fatalf("after take of evicted lease: %+v", cur)
	}
}

func testCheckpoint(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000040")
	l.LeaseOwner = "w1"
	l.LeaseCounter = 3
	l.OwnerSwitchesSinceCheckpoint = 2
	mustCreate(t, s, l)
	cp := lease.Checkpoint{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 4}
	_, err := s.UpdateCheckpoint(ctx, l.LeaseKey, "w1", 2, cp)
	wantCondFailed(t, "checkpoint with a stale counter", err)
	_, err = s.UpdateCheckpoint(ctx, l.LeaseKey, "w2", 3, cp)
	wantCondFailed(t, "checkpoint by another worker", err)
	unchanged(t, s, l)

	cur := stored(t, s, "checkpoint")(s.UpdateCheckpoint(ctx, l.LeaseKey, "w1", 3, cp))
	want := l
	want.Checkpoint = cp
	want.LeaseCounter = 4
	want.OwnerSwitchesSinceCheckpoint = 0
	equal(t, "after checkpoint", cur, want)

	// The counter moved, so a write prepared against the old one fails.
	_, err = s.UpdateCheckpoint(ctx, l.LeaseKey, "w1", 3, lease.ShardEnd)
	wantCondFailed(t, "checkpoint with the pre-checkpoint counter", err)
	cur = stored(t, s, "checkpoint SHARD_END")(s.UpdateCheckpoint(ctx, l.LeaseKey, "w1", 4, lease.ShardEnd))
	if !cur.Checkpoint.IsShardEnd() || cur.Checkpoint.SubSequenceNumber != 0 || cur.LeaseCounter != 5 {
		t.Fatalf("after SHARD_END checkpoint: %+v", cur)
	}
	// A stolen lease cannot be checkpointed by its old owner.
	stored(t, s, "steal")(s.TakeLease(ctx, l.LeaseKey, "w1", 5, "w2"))
	_, err = s.UpdateCheckpoint(ctx, l.LeaseKey, "w1", 6, cp)
	wantCondFailed(t, "checkpoint by the previous owner", err)
}

func testPrepare(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000050")
	l.LeaseOwner = "w1"
	l.OwnerSwitchesSinceCheckpoint = 1
	mustCreate(t, s, l)
	pending := lease.Checkpoint{SequenceNumber: "200", SubSequenceNumber: 3}
	_, err := s.PrepareCheckpoint(ctx, l.LeaseKey, "w2", 0, pending, []byte("state"))
	wantCondFailed(t, "prepare by another worker", err)
	_, err = s.PrepareCheckpoint(ctx, l.LeaseKey, "w1", 9, pending, []byte("state"))
	wantCondFailed(t, "prepare with a wrong counter", err)
	cur := stored(t, s, "prepare")(s.PrepareCheckpoint(ctx, l.LeaseKey, "w1", 0, pending, []byte("state")))
	want := l
	want.PendingCheckpoint = pending
	want.PendingCheckpointState = []byte("state")
	want.LeaseCounter = 1
	equal(t, "after prepare", cur, want)

	cur = stored(t, s, "prepare without state")(s.PrepareCheckpoint(ctx, l.LeaseKey, "w1", 1, pending, nil))
	if cur.PendingCheckpointState != nil || cur.PendingCheckpoint != pending {
		t.Fatalf("after prepare without state: %+v", cur)
	}
	stored(t, s, "prepare with state")(s.PrepareCheckpoint(ctx, l.LeaseKey, "w1", 2, pending, []byte{9}))

	cur = stored(t, s, "commit")(s.UpdateCheckpoint(ctx, l.LeaseKey, "w1", 3, pending))
	want = l
	want.Checkpoint = pending
	want.LeaseCounter = 4
	want.OwnerSwitchesSinceCheckpoint = 0
	equal(t, "after commit", cur, want)
}

func testHandOff(t *testing.T, s lease.Store) {
	// As a KCL 3.x leader leaves a lease it hands from old to new.
	l := newLease("shardId-000000000060")
	l.LeaseOwner = "new"
	l.CheckpointOwner = "old"
	l.LeaseCounter = 20
	mustCreate(t, s, l)
	if !l.HandOffRequested() || l.Holder() != "old" {
		t.Fatalf("Holder = %q, HandOffRequested = %v", l.Holder(), l.HandOffRequested())
	}
	_, err := s.RenewLease(ctx, l.LeaseKey, "new", 20)
	wantCondFailed(t, "renew by the next owner during hand-off", err)
	_, err = s.UpdateCheckpoint(ctx, l.LeaseKey, "new", 20, lease.TrimHorizon)
	wantCondFailed(t, "checkpoint by the next owner during hand-off", err)
	_, err = s.EvictLease(ctx, l.LeaseKey, "new")
	wantCondFailed(t, "evict by the next owner during hand-off", err)
	cur := stored(t, s, "renew by holder")(s.RenewLease(ctx, l.LeaseKey, "old", 20))
	cp := lease.Checkpoint{SequenceNumber: "300"}
	cur = stored(t, s, "checkpoint by holder")(s.UpdateCheckpoint(ctx, l.LeaseKey, "old", cur.LeaseCounter, cp))
	cur = stored(t, s, "evict by holder")(s.EvictLease(ctx, l.LeaseKey, "old"))
	want := l
	want.CheckpointOwner = ""
	want.Checkpoint = cp
	want.LeaseCounter = 23
	equal(t, "after hand-off", cur, want)
	cur = stored(t, s, "renew by the new owner")(s.RenewLease(ctx, l.LeaseKey, "new", 23))

	// HandOffLease starts one as the KCL 3.x leader does: the counter does
	// not move, so the holder's renewals go on; a second one fails.
	l3 := newLease("shardId-000000000062")
	l3.LeaseOwner = "old"
	l3.LeaseCounter = 7
	mustCreate(t, s, l3)
	_, err = s.HandOffLease(ctx, l3.LeaseKey, "other", "new")
	wantCondFailed(t, "hand-off from a non-owner", err)
	unchanged(t, s, l3)
	cur = stored(t, s, "hand off")(s.HandOffLease(ctx, l3.LeaseKey, "old", "new"))
	want3 := l3
	want3.LeaseOwner, want3.CheckpointOwner = "new", "old"
	equal(t, "after hand-off request", cur, want3)
	_, err = s.HandOffLease(ctx, l3.LeaseKey, "new", "third")
	wantCondFailed(t, "hand-off during a hand-off", err)
	cur = stored(t, s, "renew by holder after hand-off request")(s.RenewLease(ctx, l3.LeaseKey, "old", 7))
	cur = stored(t, s, "evict by holder after hand-off request")(s.EvictLease(ctx, l3.LeaseKey, "old"))
	if cur.LeaseOwner != "new" || cur.CheckpointOwner != "" || cur.LeaseCounter != 9 {
		t.Fatalf("after the holder let go: %+v", cur)
	}

	// A take cancels a hand-off in progress.
	l2 := newLease("shardId-000000000061")
	l2.LeaseOwner = "new"
	l2.CheckpointOwner = "old"
	mustCreate(t, s, l2)
	cur = stored(t, s, "take during hand-off")(s.TakeLease(ctx, l2.LeaseKey, "new", 0, "third"))
	if cur.CheckpointOwner != "" || cur.LeaseOwner != "third" || cur.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("after take during hand-off: %+v", cur)
	}
}

func testMeta(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000070")
	l.LeaseOwner = "w1"
	l.LeaseCounter = 4
	mustCreate(t, s, l)
	cur := stored(t, s, "set children")(s.UpdateLeaseMeta(ctx, l.LeaseKey, lease.MetaUpdate{
		ChildShardIDs: []string{"shardId-000000000072", "shardId-000000000071", "shardId-000000000072"},
	}))
	want := l
	want.ChildShardIDs = []string{"shardId-000000000071", "shardId-000000000072"}
	equal(t, "after setting children", cur, want)
	if !reflect.DeepEqual(cur.ChildShardIDs, want.ChildShardIDs) {
		t.Fatalf("ChildShardIDs = %q, want %q", cur.ChildShardIDs, want.ChildShardIDs)
	}
	cur = stored(t, s, "set hash range")(s.UpdateLeaseMeta(ctx, l.LeaseKey, lease.MetaUpdate{
		StartingHashKey: "170141183460469231731687303715884105728",
		EndingHashKey:   "340282366920938463463374607431768211455",
	}))
	want.StartingHashKey = "170141183460469231731687303715884105728"
	want.EndingHashKey = "340282366920938463463374607431768211455"
	equal(t, "after setting the hash range", cur, want)
	cur = stored(t, s, "empty update")(s.UpdateLeaseMeta(ctx, l.LeaseKey, lease.MetaUpdate{}))
	equal(t, "after an empty update", cur, want)
	_, err := s.UpdateLeaseMeta(ctx, "shardId-missing", lease.MetaUpdate{ChildShardIDs: []string{"a"}})
	if !errors.Is(err, lease.ErrLeaseNotFound) || !errors.Is(err, lease.ErrConditionFailed) {
		t.Fatalf("meta update of a missing lease: err = %v, want ErrLeaseNotFound and ErrConditionFailed", err)
	}
	if _, err := s.GetLease(ctx, "shardId-missing"); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("meta update created a lease: GetLease err = %v", err)
	}
}

func testDelete(t *testing.T, s lease.Store) {
	l := newLease("shardId-000000000080")
	mustCreate(t, s, l)
	if err := s.DeleteLease(ctx, l.LeaseKey); err != nil {
		t.Fatalf("DeleteLease: %v", err)
	}
	if _, err := s.GetLease(ctx, l.LeaseKey); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("GetLease after delete: err = %v, want ErrLeaseNotFound", err)
	}
	if err := s.DeleteLease(ctx, l.LeaseKey); err != nil {
		t.Fatalf("DeleteLease of a missing lease: %v", err)
	}
	mustCreate(t, s, l)
	if empty, err := s.IsTableEmpty(ctx); err != nil || empty {
		t.Fatalf("IsTableEmpty = %v, %v", empty, err)
	}
}

func testList(t *testing.T, s lease.Store) {
	ls, err := s.ListLeases(ctx)
	if err != nil || len(ls) != 0 {
		t.Fatalf("ListLeases of an empty table = %v, %v", ls, err)
	}
	var want []lease.Lease
	for _, i := range []int{4, 0, 3, 1, 2} {
		l := newLease(fmt.Sprintf("shardId-%012d", i))
		l.LeaseCounter = int64(i)
		if i%2 == 0 {
			l.LeaseOwner = fmt.Sprintf("w%d", i)
		}
		mustCreate(t, s, l)
	}
	for i := range 5 {
		l := newLease(fmt.Sprintf("shardId-%012d", i))
		l.LeaseCounter = int64(i)
		if i%2 == 0 {
			l.LeaseOwner = fmt.Sprintf("w%d", i)
		}
		want = append(want, l)
	}
	ls, err = s.ListLeases(ctx)
	if err != nil {
		t.Fatalf("ListLeases: %v", err)
	}
	if len(ls) != len(want) {
		t.Fatalf("ListLeases returned %d leases, want %d", len(ls), len(want))
	}
	for i := range want {
		equal(t, "listed lease "+want[i].LeaseKey, ls[i], want[i])
	}
}

// testListForWorker: a worker's lease keys are those whose LeaseOwner it
// is, sorted, a lease handed over to it included, and a lease it let go
// excluded.
func testListForWorker(t *testing.T, s lease.Store) {
	for i, owner := range []string{"w1", "w2", "w1", "", "w1"} {
		l := newLease(fmt.Sprintf("shardId-%012d", 90-i))
		l.LeaseOwner = owner
		mustCreate(t, s, l)
	}
	check := func(worker string, want ...string) {
		t.Helper()
		got, err := s.ListLeaseKeysForWorker(ctx, worker)
		if err != nil {
			t.Fatalf("ListLeaseKeysForWorker(%q): %v", worker, err)
		}
		if want == nil {
			want = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ListLeaseKeysForWorker(%q) = %q, want %q", worker, got, want)
		}
	}
	check("w1", "shardId-000000000086", "shardId-000000000088", "shardId-000000000090")
	check("w2", "shardId-000000000089")
	check("nobody")
	stored(t, s, "hand off")(s.HandOffLease(ctx, "shardId-000000000090", "w1", "w2"))
	stored(t, s, "evict")(s.EvictLease(ctx, "shardId-000000000086", "w1"))
	check("w1", "shardId-000000000088")
	check("w2", "shardId-000000000089", "shardId-000000000090")
	if _, err := s.ListLeaseKeysForWorker(ctx, ""); !errors.Is(err, lease.ErrInvalidArgument) {
		t.Fatalf("ListLeaseKeysForWorker(\"\") error = %v, want ErrInvalidArgument", err)
	}
}

func testConcurrentTakers(t *testing.T, s lease.Store) {
	const workers = 8
	for round := range 3 {
		key := fmt.Sprintf("shardId-00000000009%d", round)
		l := newLease(key)
		l.LeaseOwner = "old"
		l.LeaseCounter = 50
		mustCreate(t, s, l)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex // guards: winners, other
			winners []string
			other   []error
		)
		start := make(chan struct{})
		for w := range workers {
			wg.Go(func() {
				<-start
				owner := fmt.Sprintf("w%d", w)
				_, err := s.TakeLease(ctx, key, "old", 50, owner)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, owner)
				case !errors.Is(err, lease.ErrConditionFailed):
					other = append(other, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("takers failed with unexpected errors: %v", other)
		}
		if len(winners) != 1 {
			t.Fatalf("%d takers won (%v), want exactly 1", len(winners), winners)
		}
		cur := mustGet(t, s, key)
		if cur.LeaseOwner != winners[0] || cur.LeaseCounter != 51 || cur.OwnerSwitchesSinceCheckpoint != 1 {
			t.Fatalf("after concurrent take by %s: %+v", winners[0], cur)
		}
	}
}

func testConcurrentRenewers(t *testing.T, s lease.Store) {
	// Two goroutines of one worker renew with whatever counter they last
	// saw; every success must advance the counter by exactly one.
	l := newLease("shardId-000000000095")
	l.LeaseOwner = "w1"
	mustCreate(t, s, l)
	const perWorker = 15
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex // guards: successes, errs
		successes int
		errs      []error
	)
	for range 2 {
		wg.Go(func() {
			for range perWorker {
				cur, err := s.GetLease(ctx, l.LeaseKey)
				if err == nil {
					_, err = s.RenewLease(ctx, l.LeaseKey, "w1", cur.LeaseCounter)
				}
				mu.Lock()
				if err == nil {
					successes++
				} else if !errors.Is(err, lease.ErrConditionFailed) {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("renewers failed with unexpected errors: %v", errs)
	}
	if cur := mustGet(t, s, l.LeaseKey); cur.LeaseCounter != int64(successes) {
		t.Fatalf("counter = %d after %d successful renewals", cur.LeaseCounter, successes)
	}
	if successes < perWorker {
		t.Fatalf("only %d renewals succeeded; each round has one winner, want at least %d", successes, perWorker)
	}
}

func testMissing(t *testing.T, s lease.Store) {
	const key = "shardId-000000000099"
	if _, err := s.GetLease(ctx, key); !errors.Is(err, lease.ErrLeaseNotFound) || errors.Is(err, lease.ErrConditionFailed) {
		t.Fatalf("GetLease of a missing lease: err = %v, want ErrLeaseNotFound only", err)
	}
	ops := map[string]func() error{
		"renew":    func() error { _, err := s.RenewLease(ctx, key, "w1", 0); return err },
		"take":     func() error { _, err := s.TakeLease(ctx, key, "", 0, "w1"); return err },
		"evict":    func() error { _, err := s.EvictLease(ctx, key, "w1"); return err },
		"hand off": func() error { _, err := s.HandOffLease(ctx, key, "w1", "w2"); return err },
		"ckpt":     func() error { _, err := s.UpdateCheckpoint(ctx, key, "w1", 0, lease.ShardEnd); return err },
		"prepare":  func() error { _, err := s.PrepareCheckpoint(ctx, key, "w1", 0, lease.ShardEnd, nil); return err },
	}
	for name, op := range ops {
		err := op()
		if !errors.Is(err, lease.ErrLeaseNotFound) || !errors.Is(err, lease.ErrConditionFailed) {
			t.Errorf("%s of a missing lease: err = %v, want ErrLeaseNotFound and ErrConditionFailed", name, err)
		}
	}
	if _, err := s.GetLease(ctx, key); !errors.Is(err, lease.ErrLeaseNotFound) {
		t.Fatalf("a failed write created the lease: GetLease err = %v", err)
	}
	if empty, err := s.IsTableEmpty(ctx); err != nil || !empty {
		t.Fatalf("IsTableEmpty = %v, %v; want true", empty, err)
	}
}

func testInvalid(t *testing.T, s lease.Store) {
	mustCreate(t, s, newLease("k"))
	tests := map[string]func() error{
		"create empty key": func() error { _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{}); return err },
		"create half hash range": func() error {
			_, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "x", StartingHashKey: "1"})
			return err
		},
		"get empty key":     func() error { _, err := s.GetLease(ctx, ""); return err },
		"renew empty owner": func() error { _, err := s.RenewLease(ctx, "k", "", 0); return err },
		"take empty owner":  func() error { _, err := s.TakeLease(ctx, "k", "", 0, ""); return err },
		"evict empty owner": func() error { _, err := s.EvictLease(ctx, "k", ""); return err },
		"hand off to empty": func() error { _, err := s.HandOffLease(ctx, "k", "w1", ""); return err },
		"hand off to self":  func() error { _, err := s.HandOffLease(ctx, "k", "w1", "w1"); return err },
		"checkpoint zero":   func() error { _, err := s.UpdateCheckpoint(ctx, "k", "w1", 0, lease.Checkpoint{}); return err },
		"prepare zero":      func() error { _, err := s.PrepareCheckpoint(ctx, "k", "w1", 0, lease.Checkpoint{}, nil); return err },
		"delete empty key":  func() error { return s.DeleteLease(ctx, "") },
		"meta empty key":    func() error { _, err := s.UpdateLeaseMeta(ctx, "", lease.MetaUpdate{}); return err },
		"renew empty key":   func() error { _, err := s.RenewLease(ctx, "", "w1", 0); return err },
		"negative sub-seq": func() error {
			_, err := s.UpdateCheckpoint(ctx, "k", "w1", 0, lease.Checkpoint{SequenceNumber: "1", SubSequenceNumber: -1})
			return err
		},
	}
	for name, fn := range tests {
		if err := fn(); !errors.Is(err, lease.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	equal(t, "lease after invalid calls", mustGet(t, s, "k"), newLease("k"))
}
