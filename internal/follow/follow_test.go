package follow_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/internal/follow"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// putKeys puts records first…first+n-1 with keys k0…k3, aggregated.
func putKeys(t *testing.T, c *kinesis.Client, stream string, first, n int) {
	t.Helper()
	ctx := context.Background()
	p, err := producer.New(c, stream, producer.RateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := first; i < first+n; i++ {
		if _, err := p.Put(ctx, producer.Record{PartitionKey: fmt.Sprintf("k%d", i%4), Data: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.UserRecordsPut != int64(n) {
		t.Fatalf("put %d of %d records", s.UserRecordsPut, n)
	}
}

// TestFollowLiveAcrossSplitAndMerge: a Run started before the stream is
// resharded delivers every record once, each key's in put order, and
// moves from the parent to the children and to the merged shard.
func TestFollowLiveAcrossSplitAndMerge(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	c := servertest.Client(t, srv)
	servertest.CreateStream(t, c, "s", 1)

	const total = 300
	got := make(chan follow.Record, total)
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // bounds a failing run only
	defer cancel()
	n := 0
	go func() {
		done <- follow.Run(ctx, c, follow.Options{Stream: "s", From: follow.Position{Type: types.ShardIteratorTypeTrimHorizon}, Poll: 5 * time.Millisecond},
			func(r follow.Record) error {
				got <- r
				if n++; n == total {
					return follow.ErrStop
				}
				return nil
			})
	}()

	putKeys(t, c, "s", 0, 100)
	split := func(shard, at string) {
		t.Helper()
		if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(at)}); err != nil {
			t.Fatal(err)
		}
		if err := servertest.WaitActive(ctx, c, "s"); err != nil {
			t.Fatal(err)
		}
	}
	split("shardId-000000000000", "170141183460469231731687303715884105728")
	putKeys(t, c, "s", 100, 100)
	if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000002")}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(ctx, c, "s"); err != nil {
		t.Fatal(err)
	}
	putKeys(t, c, "s", 200, 100)

	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	close(got)
	last := map[string]int{}
	seen := map[int]bool{}
	aggregated := 0
	for r := range got {
		var i int
		fmt.Sscan(string(r.Data), &i)
		if prev, ok := last[r.PartitionKey]; ok && i <= prev {
			t.Fatalf("key %s: record %d after %d (shard %s)", r.PartitionKey, i, prev, r.Shard)
		}
		if seen[i] {
			t.Fatalf("record %d delivered twice", i)
		}
		last[r.PartitionKey], seen[i] = i, true
		if r.Aggregated {
			aggregated++
		}
		want := map[bool]string{true: "shardId-000000000000"}[i < 100]
		if i >= 200 {
			want = "shardId-000000000003"
		}
		if want != "" && r.Shard != want {
			t.Fatalf("record %d read from %s; want %s", i, r.Shard, want)
		}
	}
	if len(seen) != total || aggregated == 0 {
		t.Fatalf("%d distinct records, %d aggregated; want %d, some aggregated", len(seen), aggregated, total)
	}
}

// TestFollowStopsOnError: an error from the callback ends Run with it; an
// unknown stream and a sequence number without a shard are refused.
func TestFollowStopsOnError(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	c := servertest.Client(t, srv)
	servertest.CreateStream(t, c, "e", 1)
	putKeys(t, c, "e", 0, 3)
	boom := errors.New("boom")
	err := follow.Run(context.Background(), c, follow.Options{Stream: "e", From: follow.Position{Type: types.ShardIteratorTypeTrimHorizon}},
		func(follow.Record) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v; want the callback's error", err)
	}
	if err := follow.Run(context.Background(), c, follow.Options{Stream: "none"}, nil); err == nil {
		t.Fatal("Run on a missing stream returned nil")
	}
	if err := follow.Run(context.Background(), c, follow.Options{Stream: "e", From: follow.Position{Type: types.ShardIteratorTypeAtSequenceNumber, Sequence: "1"}}, nil); err == nil {
		t.Fatal("a sequence number without a shard was accepted")
	}
}

// TestFollowNoRecordAfterStop: once the callback returned ErrStop it is not
// called again, though other shards' readers have records ready.
func TestFollowNoRecordAfterStop(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	c := servertest.Client(t, srv)
	servertest.CreateStream(t, c, "stop", 8)
	putKeys(t, c, "stop", 0, 400)
	for range 5 {
		calls := 0
		err := follow.Run(context.Background(), c, follow.Options{Stream: "stop", From: follow.Position{Type: types.ShardIteratorTypeTrimHorizon}},
			func(follow.Record) error { calls++; return follow.ErrStop })
		if err != nil || calls != 1 {
			t.Fatalf("Run = %v after %d calls; want nil after 1", err, calls)
		}
	}
}
