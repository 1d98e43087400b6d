package consumer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// stallStore blocks every write to one lease, once armed, until released
// (or the caller's context ends), as a hot DynamoDB partition can.
type stallStore struct {
	lease.Store
	key     string
	armed   atomic.Bool
	stalled atomic.Int64 // writes that were blocked
	release chan struct{}
}

func (s *stallStore) stall(ctx context.Context, key string) error {
	if key != s.key || !s.armed.Load() {
		return nil
	}
	s.stalled.Add(1)
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stallStore) RenewLease(ctx context.Context, key, owner string, counter int64) (lease.Lease, error) {
	if err := s.stall(ctx, key); err != nil {
		return lease.Lease{}, err
	}
	return s.Store.RenewLease(ctx, key, owner, counter)
}

func (s *stallStore) UpdateCheckpoint(ctx context.Context, key, owner string, counter int64, cp lease.Checkpoint) (lease.Lease, error) {
	if err := s.stall(ctx, key); err != nil {
		return lease.Lease{}, err
	}
	return s.Store.UpdateCheckpoint(ctx, key, owner, counter, cp)
}

func (s *stallStore) EvictLease(ctx context.Context, key, owner string) (lease.Lease, error) {
	if err := s.stall(ctx, key); err != nil {
		return lease.Lease{}, err
	}
	return s.Store.EvictLease(ctx, key, owner)
}

// roundClock snapshots the lease counters at every lease-taking round of
// the worker (HookLeasesHeld), six rounds to a failover time: the worker's
// own clock, so "in time" needs no wall-clock assertion.
type roundClock struct {
	store lease.Store
	on    atomic.Bool
	mu    sync.Mutex // guards: snaps
	snaps []map[string]int64
}

func (c *roundClock) OnLeasesHeld(int) {
	if !c.on.Load() {
		return
	}
	ls, err := c.store.ListLeases(bg)
	if err != nil {
		return
	}
	snap := map[string]int64{}
	for _, l := range ls {
		snap[l.LeaseKey] = l.LeaseCounter
	}
	c.mu.Lock()
	c.snaps = append(c.snaps, snap)
	c.mu.Unlock()
}

func (c *roundClock) rounds() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.snaps)
}

// One lease's writes stall, each for the whole operation timeout, while the
// worker holds three more: those are still renewed in time. Time is counted
// in the worker's lease-taking rounds (a sixth of the failover time each):
// over any six rounds, every other lease's counter moved, so no other worker
// would ever have found it expired.
func TestStalledLeaseDoesNotStarveRenewals(t *testing.T) {
	t.Parallel()
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "stall", 4)
	const stalled = "shardId-000000000000"
	mem := memory.NewWithTable()
	store := &stallStore{Store: mem, key: stalled, release: make(chan struct{})}
	defer close(store.release)
	clock := &roundClock{store: mem}
	sk := newSink()
	// failover 1.2 s: a round every 200 ms, a renewal every 400 ms, and
	// each stalled write blocks for the 1 s operation timeout.
	start(t, append(fast("stall", client, store, "w1"), consumer.WithHandler(sk.handler("w1")),
		consumer.WithFailoverTime(1200*time.Millisecond), consumer.WithHooks(clock))...)
	waitFor(t, 10*time.Second, "w1 holding all 4 leases", func() bool { return owners(t, store)["w1"] == 4 })

	// The other shards stay idle, so only renewals move their counters;
	// the stalled shard gets records, so its checkpoints stall too.
	store.armed.Store(true)
	clock.on.Store(true)
	putTo(t, client, "stall", "1", plain("zero", 5)...)
	waitFor(t, 30*time.Second, "18 rounds and 2 stalled writes", func() bool { return clock.rounds() >= 18 && store.stalled.Load() >= 2 })
	clock.on.Store(false)

	clock.mu.Lock()
	defer clock.mu.Unlock()
	const failoverRounds = 6
	for i := 0; i+failoverRounds < len(clock.snaps); i++ {
		from, to := clock.snaps[i], clock.snaps[i+failoverRounds]
		for key, c := range from {
			if key != stalled && to[key] <= c {
				t.Fatalf("lease %s: counter stayed at %d for %d rounds (a failover time) while %s stalled", key, c, failoverRounds, stalled)
			}
		}
	}
	if o := owners(t, store); o["w1"] != 4 {
		t.Fatalf("owners %v, want w1 holding all 4 leases", o)
	}
}
