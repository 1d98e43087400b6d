package consumer_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestWithoutDeaggregationDeliversAggregatesWhole(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "raw", 1)
	agg, err := aggregation.NewAggregator()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := agg.Add(k, "", []byte("user-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	ct := agg.Build(nil)
	for _, data := range [][]byte{ct.Data, []byte("plain")} {
		if _, err := client.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("raw"), PartitionKey: aws.String("a"), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []consumer.Record
	start(t, append(fast("raw", client, memory.NewWithTable(), "w1"), consumer.WithDeaggregation(false),
		consumer.WithHandler(func(_ context.Context, recs []consumer.Record) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				r.Data = bytes.Clone(r.Data)
				got = append(got, r)
			}
			return nil
		}))...)
	waitFor(t, 10*time.Second, "two records", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("got %d records, want the aggregate whole and the plain record", len(got))
	}
	if r := got[0]; !bytes.Equal(r.Data, ct.Data) || r.Aggregated || r.SubSequenceNumber != 0 || r.PartitionKey != "a" {
		t.Fatalf("aggregate delivered as %+v, want its %d stored bytes, not aggregated, sub-sequence 0", r, len(ct.Data))
	}
	if string(got[1].Data) != "plain" {
		t.Fatalf("second record %q, want plain", got[1].Data)
	}
}

// idleProc counts the idle calls and prepares a checkpoint with state on
// the first record it gets.
type idleProc struct {
	recordProc
	idle    atomic.Int32
	mu      sync.Mutex
	initial consumer.InitializeInput
}

func (p *idleProc) Initialize(_ context.Context, in consumer.InitializeInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.initial = in
	return nil
}

func (p *idleProc) ProcessIdle(_ context.Context, in consumer.ProcessIdleInput) error {
	if in.ShardID == "shardId-000000000000" && in.Checkpointer != nil {
		p.idle.Add(1)
	}
	return nil
}

func (p *idleProc) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	p.sink.add(p.worker, in.Records)
	return in.Checkpointer.PrepareCheckpoint(ctx, in.Records[0], []byte("retries=2"))
}

func TestIdleProcessorAndPreparedCheckpointState(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "idle", 1)
	store := memory.NewWithTable()
	sk := newSink()
	p1 := &idleProc{recordProc: recordProc{sink: sk, worker: "w1"}}
	r := start(t, append(fast("idle", client, store, "w1"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return p1 }))...)
	waitFor(t, 10*time.Second, "three idle calls on the empty shard", func() bool { return p1.idle.Load() >= 3 })
	out, err := client.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("idle"), PartitionKey: aws.String("k"), Data: []byte("r0")})
	if err != nil {
		t.Fatal(err)
	}
	seq := aws.ToString(out.SequenceNumber)
	waitFor(t, 10*time.Second, "the record", func() bool { return sk.unique() == 1 })
	idleBefore := p1.idle.Load()
	waitFor(t, 10*time.Second, "idle calls after the record", func() bool { return p1.idle.Load() > idleBefore+1 })
	r.stop(t)

	l, err := store.GetLease(bg, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if l.PendingCheckpoint.SequenceNumber != seq || string(l.PendingCheckpointState) != "retries=2" || l.Checkpoint != lease.TrimHorizon {
		t.Fatalf("lease after PrepareCheckpoint: checkpoint %v pending %v state %q; want TRIM_HORIZON, %s, retries=2",
			l.Checkpoint, l.PendingCheckpoint, l.PendingCheckpointState, seq)
	}
	// The next processor of the shard finds the prepared state; a
	// checkpoint then removes it.
	p2 := &idleProc{recordProc: recordProc{sink: newSink(), worker: "w2"}}
	start(t, append(fast("idle", client, store, "w2"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return p2 }))...)
	waitFor(t, 10*time.Second, "the record again", func() bool { return p2.sink.unique() == 1 })
	p2.mu.Lock()
	in := p2.initial
	p2.mu.Unlock()
	if in.PendingCheckpoint.SequenceNumber != seq || string(in.PendingCheckpointState) != "retries=2" {
		t.Fatalf("Initialize got pending %v state %q, want %s retries=2", in.PendingCheckpoint, in.PendingCheckpointState, seq)
	}
}

// A fan-out subscription sends nothing while the shard is quiet: the idle
// calls come from the clock then.
func TestIdleProcessorHearsTheClockOverFanOut(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "idlefo", 1)
	p := &idleProc{recordProc: recordProc{sink: newSink(), worker: "w1"}}
	start(t, append(fast("idlefo", client, memory.NewWithTable(), "w1"), consumer.WithFanOut("app"),
		consumer.WithProcessor(func(string) consumer.RecordProcessor { return p }))...)
	waitFor(t, 10*time.Second, "three idle calls on the quiet shard", func() bool { return p.idle.Load() >= 3 })
}
