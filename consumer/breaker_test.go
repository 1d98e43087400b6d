package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/breaker"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// breakerHooks watches checkpoints and lag while the breaker is open.
type breakerHooks struct {
	t        *testing.T
	b        *breaker.Breaker
	firstLag atomic.Int64 // the first lag reported while not closed, plus one (0: none yet)
	maxLag   atomic.Int64 // the largest lag reported while not closed
}

func (h *breakerHooks) OnCheckpoint(shardID string, cp lease.Checkpoint, err error) {
	if err == nil && h.b.State() == breaker.Open {
		h.t.Errorf("shard %s checkpointed %s while the breaker was open", shardID, cp)
	}
}

func (h *breakerHooks) OnShardLag(_ string, ms int64) {
	if h.b.State() == breaker.Closed {
		return
	}
	h.firstLag.CompareAndSwap(0, ms+1)
	if ms > h.maxLag.Load() {
		h.maxLag.Store(ms)
	}
}

// A consumer whose downstream fails: the breaker opens, the shards pause
// (no checkpoint moves, leases are still renewed, the lag reported grows),
// and when the downstream recovers they resume and nothing is lost.
func TestBreakerPausesShardsWhileDownstreamFails(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "guarded", 2)
	var opened atomic.Int32
	b, err := breaker.New(breaker.Name("downstream"), breaker.ConsecutiveFailures(2), breaker.OpenFor(150*time.Millisecond),
		breaker.OnStateChange(func(c breaker.Change) {
			if c.To == breaker.Open {
				opened.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	var (
		down      atomic.Bool
		mu        sync.Mutex // guards: processed
		processed = map[string]int{}
	)
	h := func(_ context.Context, recs []consumer.Record) error {
		if down.Load() {
			return errors.New("downstream unavailable")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			processed[string(r.Data)]++
		}
		return nil
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(processed)
	}
	put := func(round int) {
		var data []string
		for i := range 20 {
			data = append(data, fmt.Sprintf("r%d-%02d", round, i))
		}
		putData(t, client, "guarded", data...)
	}
	hk := &breakerHooks{t: t, b: b}
	rounds := &roundCounter{}
	store := memory.New()
	r := start(t, append(fast("guarded", client, store, "w1"), consumer.WithHandler(h), consumer.WithBreaker(b), consumer.WithHooks(hk, rounds))...)
	put(0)
	waitFor(t, 20*time.Second, "the first round processed", func() bool { return count() == 20 })

	down.Store(true)
	put(1)
	waitFor(t, 10*time.Second, "the breaker opening", func() bool { return opened.Load() > 0 })
	leases := func() map[string]lease.Lease {
		ls, err := store.ListLeases(bg)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]lease.Lease{}
		for _, l := range ls {
			m[l.LeaseKey] = l
		}
		return m
	}
	before := leases()
	rounds.wait(t, 12) // two failover times: every lease renewed several times
	after := leases()
	for k, l := range after {
		if l.Checkpoint != before[k].Checkpoint || l.LeaseOwner != "w1" || l.LeaseCounter <= before[k].LeaseCounter {
			t.Fatalf("lease %s while paused: %+v, two failover times earlier %+v; want the same checkpoint, renewed by w1", k, l, before[k])
		}
	}
	if count() != 20 {
		t.Fatalf("%d records processed while the downstream was down", count())
	}

	down.Store(false)
	waitFor(t, 20*time.Second, "every record processed after the recovery", func() bool { return count() == 40 })
	waitFor(t, 5*time.Second, "the breaker closing", func() bool { return b.State() == breaker.Closed })
	r.stop(t)
	if first, most := hk.firstLag.Load()-1, hk.maxLag.Load(); first < 0 || most <= first {
		t.Fatalf("lag reported while paused: first %d ms, largest %d ms; want it reported and growing", first, most)
	}
	t.Logf("breaker opened %d times; lag reported while paused from %d ms to %d ms", opened.Load(), hk.firstLag.Load()-1, hk.maxLag.Load())
}

// A graceful shutdown while the breaker holds the shards paused ends the
// pause at once: the leases are released (not left to expire) with their
// checkpoints where they were.
func TestBreakerPauseEndsOnShutdown(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "paused", 1)
	putData(t, client, "paused", "a", "b", "c")
	b, err := breaker.New(breaker.ConsecutiveFailures(1), breaker.OpenFor(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h := func(context.Context, []consumer.Record) error { return errors.New("downstream unavailable") }
	store := memory.New()
	r := start(t, append(fast("paused", client, store, "w1"), consumer.WithHandler(h), consumer.WithBreaker(b),
		consumer.WithShutdownTimeout(time.Hour))...) // only the pause ending lets Run return
	waitFor(t, 10*time.Second, "the breaker opening", func() bool { return b.State() == breaker.Open })
	r.stop(t)
	ls, err := store.ListLeases(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.LeaseOwner != "" || !l.Checkpoint.IsSentinel() {
			t.Fatalf("lease after shutdown: %+v; want released, never checkpointed", l)
		}
	}
}
