package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// recordProc is a full-lifecycle processor that checkpoints every record
// and fails (once per record) where failAt says.
type recordProc struct {
	sink   *sink
	worker string
	failAt func(consumer.Record) bool
}

func (p *recordProc) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *recordProc) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	for _, r := range in.Records {
		if p.failAt != nil && p.failAt(r) {
			return errors.New("injected failure")
		}
		p.sink.add(p.worker, []consumer.Record{r})
		if err := in.Checkpointer.CheckpointRecord(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (p *recordProc) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *recordProc) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	return nil
}

func (p *recordProc) LeaseLost(context.Context, consumer.LeaseLostInput) {}

type dropHook struct{ n atomic.Int64 }

func (h *dropHook) OnRecordsDropped(_ string, n int) { h.n.Add(int64(n)) }

// putAggregates puts, for each of the 2 shards of a fresh stream, aggregates
// of 10 user records whose keys map to that shard, plus one aggregate
// holding a record of the other shard (which the consumer must drop). It
// returns the number of user records that belong where they land.
func putAggregates(t *testing.T, c *kinesis.Client, stream string, perShard int) int {
	t.Helper()
	var keys [2][]string
	for i := 0; len(keys[0]) < perShard || len(keys[1]) < perShard; i++ {
		k := fmt.Sprintf("pk%05d", i)
		s := 0
		if kds.HashPartitionKey(k).Hi >= 1<<63 {
			s = 1
		}
		if len(keys[s]) < perShard {
			keys[s] = append(keys[s], k)
		}
	}
	agg, err := aggregation.NewAggregator()
	if err != nil {
		t.Fatal(err)
	}
	var entries []types.PutRecordsRequestEntry
	flush := func() {
		ct := agg.Build(nil)
		e := types.PutRecordsRequestEntry{PartitionKey: aws.String(ct.PartitionKey), Data: ct.Data}
		if ct.ExplicitHashKey != "" {
			e.ExplicitHashKey = aws.String(ct.ExplicitHashKey)
		}
		entries = append(entries, e)
	}
	n := 0
	for s := range 2 {
		for i, k := range keys[s] {
			if err := agg.Add(k, "", fmt.Appendf(nil, "%s-0", k)); err != nil {
				t.Fatal(err)
			}
			n++
			if i%10 == 9 {
				flush()
			}
		}
		if agg.Len() > 0 {
			flush()
		}
	}
	// A stray: lands on shard 0 (its first record's), carries a shard-1 key.
	_ = agg.Add("stray-a", kds.HashPartitionKey(keys[0][0]).String(), []byte("stray-a-0"))
	_ = agg.Add("stray-b", kds.HashPartitionKey(keys[1][0]).String(), []byte("stray-b-0"))
	flush()
	n++ // the first stray record is kept
	for len(entries) > 0 {
		m := min(len(entries), 500)
		if _, err := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries[:m]}); err != nil {
			t.Fatal(err)
		}
		entries = entries[m:]
	}
	return n
}

// Every user record of KPL aggregates arrives once; a failure in the middle
// of an aggregate resumes at the next user record; records outside the
// shard's range are dropped and counted.
func TestAggregatedRecords(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "agg", 2)
	want := putAggregates(t, client, "agg", 95)
	store := memory.NewWithTable()
	sk := newSink()
	drops := &dropHook{}
	var failed sync.Map
	proc := &recordProc{sink: sk, worker: "w1", failAt: func(r consumer.Record) bool {
		if r.Aggregated && r.SubSequenceNumber == 4 {
			_, again := failed.LoadOrStore(r.SequenceNumber, true)
			return !again
		}
		return false
	}}
	r := start(t, append(fast("agg", client, store, "w1"), consumer.WithHooks(drops),
		consumer.WithProcessor(func(string) consumer.RecordProcessor { return proc }))...)
	waitFor(t, 20*time.Second, "all user records", func() bool { return sk.unique() == want })
	r.stop(t)
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d duplicates", d)
	}
	if n := drops.n.Load(); n != 1 {
		t.Fatalf("dropped %d records outside the hash range, want 1", n)
	}
	sk.mu.Lock()
	if _, ok := sk.byKey["stray-b"]; ok {
		t.Error("a record outside the shard's range was delivered")
	}
	sk.mu.Unlock()
	sk.checkOrderPrefix(t)
}

// A worker stops after checkpointing the middle of an aggregate; the next
// worker resumes at the following user record.
func TestRestartMidAggregate(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "mid", 1)
	want := putAggregates(t, client, "mid", 30) + 1 // one shard: the stray's second record is in range too
	store := memory.NewWithTable()
	sk := newSink()
	var stopAt atomic.Int64
	stopAt.Store(17)
	var seen atomic.Int64
	p1 := &recordProc{sink: sk, worker: "w1", failAt: func(r consumer.Record) bool {
		return seen.Add(1) > stopAt.Load()
	}}
	r1 := start(t, append(fast("mid", client, store, "w1"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return p1 }))...)
	waitFor(t, 10*time.Second, "17 records", func() bool { return sk.unique() == 17 })
	r1.stop(t)
	cp := mustList(t, store)[0].Checkpoint
	if cp.SubSequenceNumber == 0 {
		t.Fatalf("checkpoint %s is not in the middle of an aggregate", cp)
	}
	p2 := &recordProc{sink: sk, worker: "w2"}
	r2 := start(t, append(fast("mid", client, store, "w2"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return p2 }))...)
	waitFor(t, 10*time.Second, "all user records", func() bool { return sk.unique() == want })
	r2.stop(t)
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d records replayed after resuming at %s", d, cp)
	}
}

// checkOrderPrefix checks every key's first deliveries are key-0 only.
func (s *sink) checkOrderPrefix(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, data := range s.byKey {
		if len(data) != 1 {
			t.Fatalf("key %s: %v", k, data)
		}
	}
}
