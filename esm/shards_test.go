package esm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// waitFor polls cond every 20 ms for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestTwoRunnersShareFourShards(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	ctx := t.Context()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(ctx, client, "s"); err != nil {
		t.Fatal(err)
	}
	store := memory.New()

	var mu sync.Mutex
	invokedBy := map[string][]string{} // shard → "runner:r…" in invoke order
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, name := range []string{"a", "b"} {
		cfg := Config{
			Stream: "s", Kinesis: client, LeaseStore: store, StartingPosition: TrimHorizon,
			PollInterval: 10 * time.Millisecond, RetryDelay: time.Millisecond, Logger: testLogger(),
			ConsumerOptions: []consumer.Option{consumer.WithWorkerID(name), consumer.WithFailoverTime(600 * time.Millisecond),
				consumer.WithShardSyncInterval(100 * time.Millisecond), consumer.WithMaxRetryBackoff(50 * time.Millisecond)},
		}
		wg.Go(func() {
			errs <- Run(runCtx, cfg, func(_ context.Context, ev events.KinesisEvent) error {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range ev.Records {
					shard, _, _ := strings.Cut(r.EventID, ":")
					invokedBy[shard] = append(invokedBy[shard], name+":"+string(r.Kinesis.Data))
				}
				return nil
			})
		})
	}
	// Put the records once the runners hold two leases each.
	waitFor(t, "two leases per runner", func() bool {
		ls, err := store.ListLeases(ctx)
		if err != nil || len(ls) != 4 {
			return false
		}
		held := map[string]int{}
		for _, l := range ls {
			held[l.LeaseOwner]++
		}
		return held["a"] == 2 && held["b"] == 2
	})
	want := map[string][]string{}
	last := map[string]string{}
	for i := range 40 {
		out, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint("key-", i)), Data: fmt.Appendf(nil, "r%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		shard := aws.ToString(out.ShardId)
		want[shard] = append(want[shard], fmt.Sprint("r", i))
		last[shard] = aws.ToString(out.SequenceNumber)
	}
	waitFor(t, "every shard checkpointed at its last record", func() bool {
		for shard, seq := range last {
			l, err := store.GetLease(ctx, shard)
			if err != nil || l.Checkpoint.SequenceNumber != seq {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// Leases may move between the runners (a balancing hand-off
	// checkpoints first); per shard every record is invoked, in order, and
	// one invoked again only after a lease lost without a hand-off.
	runners := map[string]bool{}
	for shard, recs := range want {
		var firsts []string
		seen := map[string]bool{}
		for _, g := range invokedBy[shard] {
			runner, rec, _ := strings.Cut(g, ":")
			runners[runner] = true
			if !seen[rec] {
				seen[rec] = true
				firsts = append(firsts, rec)
			}
		}
		if !slices.Equal(firsts, recs) {
			t.Fatalf("shard %s: invoked %q, want %q in order", shard, invokedBy[shard], recs)
		}
	}
	if !runners["a"] || !runners["b"] {
		t.Fatalf("the records were all handled by %v", runners)
	}
}

func TestReshardingParentBeforeChild(t *testing.T) {
	s := newStreamKeys(t, "k", "k", "k")
	s.split()
	s.put([]string{"k", "k", "k"}) // into one child
	cfg := s.config()
	cfg.ConsumerOptions = append(cfg.ConsumerOptions, consumer.WithShardSyncInterval(50*time.Millisecond))
	got := run(s, cfg, failing(s, 0))
	expectLog(t, got,
		"invoke r0,r1,r2", "checkpoint r2", "checkpoint ?"+lease.ShardEnd.SequenceNumber,
		"invoke r3,r4,r5", "checkpoint r5")
	if i := slices.Index(got, "invoke r3,r4,r5"); i < 0 {
		t.Fatal("the child was not invoked")
	}
}
