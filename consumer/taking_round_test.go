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

// readCountStore counts the reads of the lease table.
type readCountStore struct {
	lease.Store
	lists, ownerKeys, gets atomic.Int64
}

func (s *readCountStore) ListLeases(ctx context.Context) ([]lease.Lease, error) {
	s.lists.Add(1)
	return s.Store.ListLeases(ctx)
}

func (s *readCountStore) ListLeaseKeysForWorker(ctx context.Context, worker string) ([]string, error) {
	s.ownerKeys.Add(1)
	return s.Store.ListLeaseKeysForWorker(ctx, worker)
}

func (s *readCountStore) GetLease(ctx context.Context, key string) (lease.Lease, error) {
	s.gets.Add(1)
	return s.Store.GetLease(ctx, key)
}

// readsAtRounds records the store's read counts at the end of every
// lease-taking round (HookLeasesHeld).
type readsAtRounds struct {
	store *readCountStore
	mu    sync.Mutex // guards: at
	at    [][3]int64
}

func (r *readsAtRounds) OnLeasesHeld(int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at = append(r.at, [3]int64{r.store.lists.Load(), r.store.ownerKeys.Load(), r.store.gets.Load()})
}

func (r *readsAtRounds) rounds() [][3]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][3]int64(nil), r.at...)
}

// A worker that takes on its own (no KCL 3.x leader to follow) reads the
// lease table once per taking round: the scan it balances from also gives
// it the leases handed over to it, so it neither queries the owner index
// nor reads those leases again (without the index, a query is a second
// scan).
func TestTakingRoundReadsTheTableOnce(t *testing.T) {
	t.Parallel()
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "rounds", 2)
	store := &readCountStore{Store: memory.NewWithTable()}
	reads := &readsAtRounds{store: store}
	// No shard sync after the first, so only the taker reads the table.
	start(t, append(fast("rounds", client, store, "w1"), consumer.WithHooks(reads), consumer.WithHandler(newSink().handler("w1")),
		consumer.WithShardSyncInterval(time.Hour))...)
	waitFor(t, 10*time.Second, "w1 holding both leases and 8 more rounds", func() bool {
		return owners(t, store.Store)["w1"] == 2 && len(reads.rounds()) >= 8
	})
	at := reads.rounds()
	for i := 1; i < len(at); i++ {
		if d := [3]int64{at[i][0] - at[i-1][0], at[i][1] - at[i-1][1], at[i][2] - at[i-1][2]}; d != [3]int64{1, 0, 0} {
			t.Fatalf("round %d read the table %d times by scan, %d by the owner index and %d leases one by one; want one scan", i, d[0], d[1], d[2])
		}
	}
}
