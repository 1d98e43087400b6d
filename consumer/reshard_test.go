package consumer_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// Split and merge while two workers consume, polling and over fan-out: per key, records arrive in
// put order across parents and children; nothing is lost; parents get
// SHARD_END and their leases are deleted.
func TestReshardingWhileConsuming(t *testing.T) {
	forEachRetrieval(t, func(t *testing.T, mode []consumer.Option) {
		_, client := startServer(t, server.Options{})
		servertest.CreateStream(t, client, "rs", 2)
		store := memory.NewWithTable()
		sk := newSink()
		p := newProducer(client, "rs", 40)
		stopPut := p.background(t, 10*time.Millisecond)
		defer stopPut()

		var mu sync.Mutex
		var ended []string
		hook := checkpointHook(func(shard string, cp lease.Checkpoint, err error) {
			if err == nil && cp.IsShardEnd() {
				mu.Lock()
				ended = append(ended, shard)
				mu.Unlock()
			}
		})
		for _, id := range []string{"w1", "w2"} {
			start(t, append(append(fast("rs", client, store, id), mode...), consumer.WithHandler(sk.handler(id)), consumer.WithHooks(hook))...)
		}
		waitFor(t, 10*time.Second, "first records", func() bool { return sk.unique() > 100 })

		// shardId-000000000000 covers [0, 2^127-1]: split it at 2^126.
		if _, err := client.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("rs"), ShardToSplit: aws.String("shardId-000000000000"),
			NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
			t.Fatal(err)
		}
		if err := servertest.WaitActive(bg, client, "rs"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		// shardId-000000000003 ([2^126, 2^127-1]) and shardId-000000000001 are adjacent.
		if _, err := client.MergeShards(bg, &kinesis.MergeShardsInput{StreamName: aws.String("rs"), ShardToMerge: aws.String("shardId-000000000003"),
			AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
			t.Fatal(err)
		}
		if err := servertest.WaitActive(bg, client, "rs"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		stopPut()
		waitFor(t, 30*time.Second, "all records", func() bool { return sk.unique() == p.total() })
		sk.checkOrder(t, p.total())

		wantEnded := []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000003"}
		waitFor(t, 10*time.Second, "SHARD_END checkpoints", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, s := range wantEnded {
				if !slices.Contains(ended, s) {
					return false
				}
			}
			return true
		})
		waitFor(t, 10*time.Second, "parent leases deleted", func() bool {
			var keys []string
			for _, l := range mustList(t, store) {
				keys = append(keys, l.LeaseKey)
			}
			return slices.Equal(keys, []string{"shardId-000000000002", "shardId-000000000004"})
		})
		t.Logf("records %d, duplicates %d", p.total(), sk.duplicates())
	})
}
