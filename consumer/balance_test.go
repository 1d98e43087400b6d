package consumer_test

import (
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

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

// 3 workers settle at 4 leases each of 12; a 4th gets 3 by stealing; a
// worker leaving hands its leases over gracefully with nothing replayed;
// polling and over fan-out.
func TestBalancing(t *testing.T) {
	forEachRetrieval(t, func(t *testing.T, mode []consumer.Option) {
		_, client := startServer(t, server.Options{})
		servertest.CreateStream(t, client, "bal", 12)
		store := memory.NewWithTable()
		sk := newSink()
		p := newProducer(client, "bal", 48)
		stopPut := p.background(t, 30*time.Millisecond)
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
		waitFor(t, 30*time.Second, "4 workers at 3 leases each", settled(4, 3))
		steals.mu.Lock()
		if steals.stolen-before < 3 {
			t.Errorf("the 4th worker stole %d leases, want 3", steals.stolen-before)
		}
		steals.mu.Unlock()

		// Let every worker catch up and the last steal's replay (a stolen shard's
		// uncheckpointed records, delivered again by the thief) land, then count
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
