package consumer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// flakyStore times out a fifth of renewals and checkpoints, half of them
// after the write took effect (the caller cannot tell which).
type flakyStore struct {
	lease.Store
}

func (s flakyStore) flake(apply func() (lease.Lease, error)) (lease.Lease, error) {
	switch rand.IntN(10) {
	case 0:
		return lease.Lease{}, context.DeadlineExceeded
	case 1:
		_, _ = apply()
		return lease.Lease{}, context.DeadlineExceeded
	}
	return apply()
}

func (s flakyStore) RenewLease(ctx context.Context, key, owner string, counter int64) (lease.Lease, error) {
	return s.flake(func() (lease.Lease, error) { return s.Store.RenewLease(ctx, key, owner, counter) })
}

func (s flakyStore) UpdateCheckpoint(ctx context.Context, key, owner string, counter int64, cp lease.Checkpoint) (lease.Lease, error) {
	return s.flake(func() (lease.Lease, error) { return s.Store.UpdateCheckpoint(ctx, key, owner, counter, cp) })
}

// A corrupt checkpoint on one shard, a handler that panics and fails, and a
// store that times out: the worker keeps its other shards going, retries
// failed batches from the last checkpoint, and never checkpoints past a
// record it did not process.
func TestBadInputKeepsOtherShardsGoing(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "bad", 4)
	mem := memory.NewWithTable()
	if _, err := mem.CreateLeaseIfNotExists(bg, lease.Lease{LeaseKey: "shardId-000000000000",
		Checkpoint: lease.Checkpoint{SequenceNumber: "not-a-sequence-number"}}); err != nil {
		t.Fatal(err)
	}
	p := newProducer(client, "bad", 40)
	for range 3 {
		p.round(t)
	}
	want := map[string]bool{}
	for _, sh := range []string{"shardId-000000000001", "shardId-000000000002", "shardId-000000000003"} {
		for _, r := range servertest.ReadShard(t, client, "bad", sh) {
			want[string(r.Data)] = true
		}
	}

	sk := newSink()
	var mu sync.Mutex
	failed := map[string]bool{}
	handler := func(ctx context.Context, recs []consumer.Record) error {
		for _, r := range recs {
			d := string(r.Data)
			mu.Lock()
			first := !failed[d]
			failed[d] = true
			mu.Unlock()
			if first && strings.HasPrefix(d, "k007-") {
				panic("processor bug on " + d)
			}
			if first && strings.HasPrefix(d, "k013-") {
				return errors.New("downstream unavailable")
			}
		}
		sk.add("w1", recs)
		return nil
	}
	r := start(t, append(fast("bad", client, flakyStore{mem}, "w1"), consumer.WithHandler(handler))...)
	waitFor(t, 30*time.Second, "every record of the healthy shards", func() bool {
		sk.mu.Lock()
		defer sk.mu.Unlock()
		n := 0
		for _, data := range sk.byKey {
			for _, d := range data {
				if want[d] {
					n++
				}
			}
		}
		return n == len(want)
	})
	// The corrupt shard is still held, and nothing of it was processed.
	l, err := mem.GetLease(bg, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if l.LeaseOwner != "w1" || l.Checkpoint.SequenceNumber != "not-a-sequence-number" {
		t.Fatalf("corrupt lease = %+v", l)
	}
	r.stop(t)
	// Checkpoints never pass a processed record.
	sk.mu.Lock()
	processed := map[string]bool{}
	for id := range sk.count {
		processed[id] = true
	}
	sk.mu.Unlock()
	for _, l := range mustList(t, mem) {
		if l.ShardID() == "shardId-000000000000" {
			continue
		}
		id := l.ShardID() + "/" + l.Checkpoint.SequenceNumber + "/0"
		if !processed[id] {
			t.Errorf("lease %s checkpointed at %s, which was not processed", l.LeaseKey, l.Checkpoint)
		}
	}
}
