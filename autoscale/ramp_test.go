package autoscale_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/autoscale"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

var bg = context.Background()

// TestRampScalesUpAndDown puts a load of about 1.6 MiB/s into a one-shard
// stream of the embedded server with its limits on (1 MiB/s per shard): the
// scaler, measuring the server's own counters, scales up within a bounded
// number of decisions; when the load stops it scales back to one shard
// after the quiet period. Every call respects UpdateShardCount's rules, and
// a consumer reading throughout gets every record put.
func TestRampScalesUpAndDown(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	client := servertest.Client(t, srv)
	servertest.CreateStream(t, client, "ramp", 1)

	var (
		mu        sync.Mutex // guards: decisions
		decisions []autoscale.Decision
	)
	last := func() (n int, d autoscale.Decision) {
		mu.Lock()
		defer mu.Unlock()
		if len(decisions) == 0 {
			return 0, d
		}
		return len(decisions), decisions[len(decisions)-1]
	}
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			for i, d := range decisions {
				t.Logf("decision %d: %s %d → %d (u %.2f, %.0f B/s, %.0f rec/s, %.1f throttled/s): %s", i, d.Action, d.Shards, d.Target, d.Utilization, d.BytesPerSecond, d.RecordsPerSecond, d.ThrottledPerSecond, d.Reason)
			}
		}
	})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	scaled := make(chan error, 1)
	go func() {
		scaled <- autoscale.Run(ctx, autoscale.Config{
			Stream: "ramp", Kinesis: client,
			Metrics:  autoscale.NewSnapshotSource(func(context.Context) (*metrics.Snapshot, error) { return srv.Metrics(), nil }),
			Interval: 150 * time.Millisecond, UpWindow: 450 * time.Millisecond, QuietPeriod: 1200 * time.Millisecond,
			// A low target keeps the test meaningful on a loaded machine,
			// where the producer may not reach the offered 1.6 MiB/s.
			TargetUtilization: 0.5,
			OnDecision: func(d autoscale.Decision) {
				mu.Lock()
				decisions = append(decisions, d)
				mu.Unlock()
			},
		})
	}()

	// The consumer counts every record it gets, across the reshards.
	var (
		gotMu sync.Mutex // guards: got
		got   = map[string]bool{}
	)
	c, err := consumer.New(consumer.WithStream("ramp"), consumer.WithKinesis(client), consumer.WithLeaseStore(memory.New()),
		consumer.WithInitialPosition(consumer.TrimHorizon()), consumer.WithIdleTime(200*time.Millisecond),
		consumer.WithShardSyncInterval(200*time.Millisecond), consumer.WithFailoverTime(2*time.Second), consumer.WithMaxRetryBackoff(200*time.Millisecond),
		consumer.WithHandler(func(_ context.Context, recs []consumer.Record) error {
			gotMu.Lock()
			defer gotMu.Unlock()
			for _, r := range recs {
				got[string(r.Data[:16])] = true
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	consumed := make(chan error, 1)
	go func() { consumed <- c.Run(ctx) }()

	// The load: 16 KiB records, about 100 a second, from one producer
	// that keeps within what the shards accept.
	p, err := producer.New(client, "ramp", producer.Aggregation(false), producer.MaxBufferedTime(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var (
		load    sync.WaitGroup
		pending []*producer.Pending
	)
	load.Add(1)
	go func() {
		defer load.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 20000; n++ { // bounded: about 200 s at most
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			data := make([]byte, 16<<10)
			copy(data, fmt.Sprintf("%016d", n))
			h, err := p.Put(loadCtx, producer.Record{PartitionKey: fmt.Sprint(n), Data: data})
			if err != nil {
				return
			}
			pending = append(pending, h)
		}
	}()

	waitFor(t, 60*time.Second, "a scale-up", func() bool { _, d := last(); return d.Action == autoscale.ScaleUp && d.Err == nil })
	upAt, _ := last()
	waitFor(t, 60*time.Second, "the load within the target", func() bool {
		_, d := last()
		// A full window measured since the last change, within the target.
		return d.Action == autoscale.Hold && d.Shards >= 2 && d.Utilization > 0 && d.Utilization <= 0.5 && strings.Contains(d.Reason, "within the target")
	})
	stopLoad()
	load.Wait()
	if err := p.Close(bg); err != nil {
		t.Fatal(err)
	}
	stoppedAt, _ := last()
	waitFor(t, 60*time.Second, "a scale-down to one shard", func() bool { _, d := last(); return d.Action == autoscale.ScaleDown && d.Target == 1 })
	downAt, _ := last()
	waitFor(t, 30*time.Second, "every record consumed", func() bool {
		gotMu.Lock()
		defer gotMu.Unlock()
		return len(got) >= len(pending)
	})
	cancel()
	<-scaled
	<-consumed

	mu.Lock()
	defer mu.Unlock()
	if upAt > 40 {
		t.Errorf("the first scale-up came at decision %d; want within 40 (the window is 3 decisions)", upAt)
	}
	if downAt-stoppedAt > 80 {
		t.Errorf("the scale-down to one shard came %d decisions after the load stopped; want within 80 (the quiet period is 8)", downAt-stoppedAt)
	}
	calls := 0
	for i, d := range decisions {
		if d.Action == autoscale.Hold {
			continue
		}
		calls++
		t.Logf("decision %d: %s %d → %d: %s", i, d.Action, d.Shards, d.Target, d.Reason)
		if d.Err != nil {
			t.Errorf("decision %d: UpdateShardCount %d → %d failed: %v", i, d.Shards, d.Target, d.Err)
		}
		if d.Target > 2*d.Shards || 2*d.Target < d.Shards || d.Target < 1 {
			t.Errorf("decision %d: %d → %d breaks the half/double rule", i, d.Shards, d.Target)
		}
		if d.Action == autoscale.ScaleDown && i < downAt-1 && i > upAt && i < stoppedAt {
			t.Errorf("decision %d scaled down while the load ran: %s", i, d.Reason)
		}
	}
	if calls > 10 {
		t.Errorf("%d UpdateShardCount calls; at most 10 are allowed in 24 hours", calls)
	}
	gotMu.Lock()
	defer gotMu.Unlock()
	for i := range pending {
		if r, ok := pending[i].Result(); ok && r.Err == nil && !got[fmt.Sprintf("%016d", i)] {
			t.Errorf("record %d was put but never consumed", i)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
