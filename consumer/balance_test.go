package consumer_test

import (
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// loaded starts a server with a 12-shard stream under load (48 keys, a
// round of puts every put interval) and an empty lease table.
func loaded(t *testing.T, stream string, every time.Duration) (*kinesis.Client, *memory.Store, *sink, *producer, func()) {
	t.Helper()
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, stream, 12)
	p := newProducer(client, stream, 48)
	return client, memory.NewWithTable(), newSink(), p, p.background(t, every)
}

type stealHook struct {
	mu     sync.Mutex // guards: stolen
	stolen int
}

func (h *stealHook) OnLeaseTaken(shardID string, stolen bool) {
	if stolen {
		h.mu.Lock()
		h.stolen++
		h.mu.Unlock()
	}
}

// 3 workers settle at 4 leases each of 12; a 4th gets 3 by hand-offs; a
// worker leaving hands its leases over gracefully with nothing replayed;
// polling and over fan-out.
func TestBalancing(t *testing.T) {
	forEachRetrieval(t, func(t *testing.T, mode []consumer.Option) {
		client, store, sk, p, stopPut := loaded(t, "bal", 30*time.Millisecond)
		defer stopPut()

		steals := &stealHook{}
		workers := map[string]*running{}
		add := func(id string) {
			// A 2 s failover (not fast()'s 600 ms): under -race on a loaded
			// machine a 600 ms stall expires a healthy worker's lease, and the
			// take-over replays records, which this test must tell from a bad hand-off.
			workers[id] = start(t, append(append(fast("bal", client, store, id), mode...), consumer.WithHandler(sk.handler(id)), consumer.WithHooks(steals), consumer.WithFailoverTime(2*time.Second))...)
		}
		settled := func(n, each int) func() bool {
			return func() bool {
				o := owners(t, store)
				if len(o) != n {
					return false
				}
				for _, c := range o {
					if c != each {
						return false
					}
				}
				return true
			}
		}
		for _, id := range []string{"w1", "w2", "w3"} {
			add(id)
		}
		waitFor(t, 30*time.Second, "3 workers at 4 leases each", settled(3, 4))

		steals.mu.Lock()
		before := steals.stolen
		steals.mu.Unlock()
		add("w4")
		// Owners count a lease once its hand-off is requested; it is taken
		// once the holder let go.
		waitFor(t, 30*time.Second, "4 workers at 3 leases each, 3 handed over to the 4th", func() bool {
			steals.mu.Lock()
			moved := steals.stolen - before
			steals.mu.Unlock()
			return settled(4, 3)() && moved >= 3
		})

		// Let every worker catch up (and any replay land: hand-offs replay
		// nothing, but a lease that expired under load would), then count
		// replays from here on.
		last := -1
		waitFor(t, 20*time.Second, "catching up", func() bool {
			d := sk.duplicates()
			quiet := d == last
			last = d
			if !quiet {
				time.Sleep(300 * time.Millisecond)
			}
			return quiet && sk.unique() >= p.total()
		})
		dupsBefore := sk.duplicates()
		workers["w2"].stop(t)
		waitFor(t, 30*time.Second, "3 workers at 4 leases each after w2 left", settled(3, 4))
		stopPut()
		waitFor(t, 20*time.Second, "all records", func() bool { return sk.unique() == p.total() })
		if d := sk.duplicates() - dupsBefore; d != 0 {
			t.Fatalf("%d records replayed after a graceful hand-off", d)
		}
		sk.mu.Lock()
		per := maps.Clone(sk.byWorker)
		sk.mu.Unlock()
		t.Logf("records %d, duplicates from steals %d, per worker %v", p.total(), dupsBefore, per)
	})
}

// Three workers start one after another on a 12-shard stream under load:
// the first takes every lease, the later ones get their share by graceful
// hand-offs (the holder finishes its batch, checkpoints and lets go), and
// no record is processed twice.
func TestRollingStartReplaysNothing(t *testing.T) {
	t.Parallel()
	client, store, sk, p, stopPut := loaded(t, "roll", 20*time.Millisecond)
	defer stopPut()

	steals := &stealHook{}
	add := func(id string) {
		// 2 s failover, as in TestBalancing: no healthy lease may expire
		// under -race on a loaded machine, or its take-over would replay.
		start(t, append(fast("roll", client, store, id), consumer.WithHandler(sk.handler(id)), consumer.WithHooks(steals),
			consumer.WithFailoverTime(2*time.Second))...)
	}
	add("w1")
	waitFor(t, 20*time.Second, "w1 holding every lease", func() bool { return owners(t, store)["w1"] == 12 })
	add("w2")
	waitFor(t, 20*time.Second, "w2 holding a lease", func() bool { return owners(t, store)["w2"] > 0 })
	add("w3")
	waitFor(t, 30*time.Second, "3 workers at 4 leases each, every hand-off done", func() bool {
		steals.mu.Lock()
		moved := steals.stolen
		steals.mu.Unlock()
		o := owners(t, store)
		return o["w1"] == 4 && o["w2"] == 4 && o["w3"] == 4 && moved >= 8
	})
	stopPut()
	waitFor(t, 20*time.Second, "all records", func() bool { return sk.unique() == p.total() })
	sk.checkOrder(t, p.total())
	steals.mu.Lock()
	defer steals.mu.Unlock()
	if steals.stolen < 8 {
		t.Errorf("%d leases moved by hand-off, want 8", steals.stolen)
	}
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d records replayed during a rolling start", d)
	}
}

// takenHook records the leases a worker took, by any means.
type takenHook struct {
	mu    sync.Mutex // guards: taken
	taken []string
}

func (h *takenHook) OnLeaseTaken(shardID string, _ bool) {
	h.mu.Lock()
	h.taken = append(h.taken, shardID)
	h.mu.Unlock()
}

func (h *takenHook) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.taken)
}

// A rolling deploy: of three workers at 4 leases each, one stops (releasing
// its leases) and its successor starts. The others still count the stopped
// worker for a failover time, so they take none of its leases: the
// successor gets all four, each lease moves once, and nothing is replayed.
func TestRollingDeployMovesEachLeaseOnce(t *testing.T) {
	t.Parallel()
	client, store, sk, p, stopPut := loaded(t, "deploy", 20*time.Millisecond)
	defer stopPut()

	hooks := map[string]*takenHook{}
	workers := map[string]*running{}
	add := func(id string) {
		hooks[id] = &takenHook{}
		// 10 s failover: the stopped worker counts for 10 s, ample for its
		// successor to start even on a loaded machine.
		workers[id] = start(t, append(fast("deploy", client, store, id), consumer.WithHandler(sk.handler(id)), consumer.WithHooks(hooks[id]),
			consumer.WithFailoverTime(10*time.Second))...)
	}
	for _, id := range []string{"w1", "w2", "w3"} {
		add(id)
	}
	waitFor(t, 30*time.Second, "3 workers at 4 leases each", func() bool {
		o := owners(t, store)
		return o["w1"] == 4 && o["w2"] == 4 && o["w3"] == 4 && len(mustListHandOffs(t, store)) == 0
	})
	// w1's leases: owned by it and taken (a lease handed over to it but
	// not taken yet is in transit, and may go elsewhere when it stops).
	w1Leases := map[string]bool{}
	w1Took := map[string]bool{}
	for _, id := range hooks["w1"].list() {
		w1Took[id] = true
	}
	for _, l := range mustList(t, store) {
		if l.LeaseOwner == "w1" && w1Took[l.ShardID()] {
			w1Leases[l.ShardID()] = true
		}
	}
	seen := map[string]int{"w2": len(hooks["w2"].list()), "w3": len(hooks["w3"].list())}
	workers["w1"].stop(t)
	add("w1b")
	waitFor(t, 30*time.Second, "w1b holding w1's 4 leases", func() bool { return owners(t, store)["w1b"] == 4 && len(hooks["w1b"].list()) == 4 })
	for _, id := range []string{"w2", "w3"} {
		for _, shard := range hooks[id].list()[seen[id]:] {
			if w1Leases[shard] {
				t.Fatalf("%s took %s, released by the stopped worker, which then had to move again", id, shard)
			}
		}
	}
	stopPut()
	waitFor(t, 20*time.Second, "all records", func() bool { return sk.unique() == p.total() })
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d records replayed during a rolling deploy", d)
	}
}

// mustListHandOffs returns the leases with a hand-off in progress.
func mustListHandOffs(t *testing.T, s lease.Store) []lease.Lease {
	t.Helper()
	var out []lease.Lease
	for _, l := range mustList(t, s) {
		if l.HandOffRequested() {
			out = append(out, l)
		}
	}
	return out
}
