package consumer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// gatedProc holds its first batch until the gate opens, checkpoints each
// batch only when checkpoint is set, and counts the records delivered once
// stolen is set.
type gatedProc struct {
	checkpoint bool
	gate       chan struct{}
	held       chan int // the first batch's size, once it is being processed
	first      sync.Once
	stolen     *atomic.Bool
	after      *atomic.Int64
	lost       chan struct{} // closed by LeaseLost, the processor's last call
}

func (p *gatedProc) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *gatedProc) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	if p.stolen.Load() {
		p.after.Add(int64(len(in.Records)))
	}
	p.first.Do(func() {
		p.held <- len(in.Records)
		<-p.gate
	})
	if p.checkpoint {
		return in.Checkpointer.Checkpoint(ctx)
	}
	return nil
}

func (p *gatedProc) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *gatedProc) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	return nil
}

func (p *gatedProc) LeaseLost(context.Context, consumer.LeaseLostInput) { close(p.lost) }

// recordsRead is how many records GetRecords returned from stream.
func recordsRead(srv *server.Server, stream string) float64 {
	for _, sm := range srv.Metrics().Streams {
		if sm.StreamName == stream {
			return sm.Counters[metrics.GetRecordsRecords]
		}
	}
	return 0
}

type lostHook struct{ n atomic.Int64 }

func (h *lostHook) OnLeaseLost(string) { h.n.Add(1) }

// Another worker steals the lease while the old owner processes a batch,
// with more batches prefetched behind it. The old owner learns it either
// from its checkpoint after the batch (the conditional write fails) or from
// a renewal during the batch; either way it delivers nothing after the
// batch being processed: its prefetched batches are dropped.
func TestStolenLeaseStopsDelivering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		checkpoint bool
		failover   time.Duration
	}{
		// A long failover: the checkpoint after the batch finds the steal
		// before any renewal does.
		{"CheckpointFails", true, 10 * time.Second},
		// A processor that does not checkpoint: a renewal finds it.
		{"RenewalFindsIt", false, 600 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, client := startServer(t, server.Options{})
			servertest.CreateStream(t, client, "steal", 1)
			putTo(t, client, "steal", "1", plain("k", 100)...)
			store := memory.NewWithTable()
			var stolen atomic.Bool
			var after atomic.Int64
			proc := &gatedProc{checkpoint: tc.checkpoint, gate: make(chan struct{}), held: make(chan int, 1), stolen: &stolen, after: &after, lost: make(chan struct{})}
			lost := &lostHook{}
			start(t, append(fast("steal", client, store, "old"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return proc }),
				consumer.WithMaxRecords(10), consumer.WithPrefetch(3), consumer.WithFailoverTime(tc.failover), consumer.WithHooks(lost))...)

			var batch int
			select {
			case batch = <-proc.held:
			case <-time.After(10 * time.Second):
				t.Fatal("the first batch never arrived")
			}
			// The reader fills its prefetch buffer: 3 batches of 10 read
			// behind the one being processed.
			waitFor(t, 10*time.Second, "the reader's prefetched batches", func() bool { return recordsRead(srv, "steal") >= 40 })
			l := mustList(t, store)[0]
			stolen.Store(true)
			if _, err := store.TakeLease(bg, l.LeaseKey, "old", l.LeaseCounter, "thief"); err != nil {
				t.Fatal(err)
			}
			if !tc.checkpoint {
				waitFor(t, 10*time.Second, "a renewal finding the steal", func() bool { return lost.n.Load() > 0 })
			}
			close(proc.gate)
			// LeaseLost is the processor's last call: every delivery
			// after the loss would have come before it.
			select {
			case <-proc.lost:
			case <-time.After(10 * time.Second):
				t.Fatal("the old owner's processor was never told the lease was lost")
			}
			if n := after.Load(); n > 0 {
				t.Fatalf("the old owner delivered %d records after the steal, beyond the %d-record batch being processed", n, batch)
			}
			if o := mustList(t, store)[0].LeaseOwner; o != "thief" {
				t.Fatalf("lease owner %q, want thief", o)
			}
		})
	}
}
