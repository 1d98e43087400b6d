package consumer_test

import (
	"context"
	"fmt"
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

// Split and merge while two workers consume: per key, records arrive in
// put order across parents and children; nothing is lost; parents get
// SHARD_END and their leases are deleted; polling and over fan-out.
func TestReshardingWhileConsuming(t *testing.T) {
	forEachRetrieval(t, func(t *testing.T, mode []consumer.Option) {
		_, client := startServer(t, server.Options{})
		servertest.CreateStream(t, client, "rs", 2)
		store := &auditStore{Store: memory.NewWithTable()}
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
		store.check(t, len(wantEnded))
		t.Logf("records %d, duplicates %d", p.total(), sk.duplicates())
	})
}

// auditStore checks the KCL's resharding bookkeeping at the moment of each
// write: a SHARD_END checkpoint finds childShardIds already on the lease
// (ShutdownTask), and a finished parent's lease is deleted only when every
// child's lease has left TRIM_HORIZON and AT_TIMESTAMP and the parent's own
// parents' leases are gone (LeaseCleanupManager).
type auditStore struct {
	lease.Store
	mu        sync.Mutex // guards: shardEnds, deletes, bad
	shardEnds int
	deletes   int
	bad       []string
}

func (s *auditStore) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bad = append(s.bad, fmt.Sprintf(format, args...))
}

func (s *auditStore) UpdateCheckpoint(ctx context.Context, key, owner string, counter int64, cp lease.Checkpoint) (lease.Lease, error) {
	if cp.IsShardEnd() {
		cur, err := s.Store.GetLease(ctx, key)
		if err == nil && len(cur.ChildShardIDs) == 0 {
			s.fail("%s: SHARD_END checkpointed before childShardIds were recorded", key)
		}
	}
	l, err := s.Store.UpdateCheckpoint(ctx, key, owner, counter, cp)
	if err == nil && cp.IsShardEnd() {
		s.mu.Lock()
		s.shardEnds++
		s.mu.Unlock()
	}
	return l, err
}

func (s *auditStore) DeleteLease(ctx context.Context, key string) error {
	cur, err := s.Store.GetLease(ctx, key)
	if err != nil {
		return s.Store.DeleteLease(ctx, key)
	}
	if !cur.Checkpoint.IsShardEnd() {
		s.fail("%s: deleted at checkpoint %s, not SHARD_END", key, cur.Checkpoint)
	}
	if len(cur.ChildShardIDs) == 0 {
		s.fail("%s: deleted without childShardIds", key)
	}
	for _, c := range cur.ChildShardIDs {
		cl, err := s.Store.GetLease(ctx, c)
		switch {
		case err != nil:
			s.fail("%s: deleted while child %s has no lease (%v)", key, c, err)
		case cl.Checkpoint.IsTrimHorizon() || cl.Checkpoint.IsAtTimestamp():
			s.fail("%s: deleted while child %s is still at %s", key, c, cl.Checkpoint)
		}
	}
	for _, p := range cur.ParentShardIDs {
		if _, err := s.Store.GetLease(ctx, p); err == nil {
			s.fail("%s: deleted before its parent %s", key, p)
		}
	}
	err = s.Store.DeleteLease(ctx, key)
	if err == nil {
		s.mu.Lock()
		s.deletes++
		s.mu.Unlock()
	}
	return err
}

func (s *auditStore) check(t *testing.T, parents int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bad {
		t.Error(b)
	}
	if s.shardEnds < parents || s.deletes < parents {
		t.Errorf("%d SHARD_END checkpoints and %d parent leases deleted, want at least %d each", s.shardEnds, s.deletes, parents)
	}
}
