package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// rangeProc runs check on the first batch, then stops processing.
type rangeProc struct {
	check func(ctx context.Context, in consumer.ProcessRecordsInput)
	done  chan struct{}
}

func (p *rangeProc) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *rangeProc) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	select {
	case <-p.done:
	default:
		p.check(ctx, in)
		close(p.done)
	}
	return nil
}

func (p *rangeProc) ShardEnded(context.Context, consumer.ShardEndedInput) error { return nil }

func (p *rangeProc) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	return nil
}

func (p *rangeProc) LeaseLost(context.Context, consumer.LeaseLostInput) {}

// TestCheckpointOutsideTheDeliveredRange: as the KCL's
// ShardRecordProcessorCheckpointer, the Checkpointer accepts only a
// checkpoint between the last checkpoint and the last record delivered:
// one below the last checkpoint, beyond the last record delivered (a
// record not delivered yet, or a made-up number), malformed, or with a
// negative sub-sequence number is refused with ErrInvalidCheckpoint naming
// the value, and the lease's checkpoint does not move.
func TestCheckpointOutsideTheDeliveredRange(t *testing.T) {
	t.Parallel()
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "range", 1)
	seqs := putTo(t, client, "range", "1", plain("k", 4)...)
	store := memory.New()
	type refusal struct {
		what string
		err  error
	}
	var refusals []refusal
	var firstErr, lastErr error
	var batch []consumer.Record
	p := &rangeProc{done: make(chan struct{})}
	p.check = func(ctx context.Context, in consumer.ProcessRecordsInput) {
		batch = in.Records
		if len(batch) < 2 {
			return
		}
		cp := in.Checkpointer
		first, last := batch[0], batch[len(batch)-1]
		firstErr = cp.CheckpointRecord(ctx, batch[1])
		refusals = []refusal{
			{"below the last checkpoint", cp.CheckpointRecord(ctx, first)},
			{"beyond the last record delivered", cp.CheckpointAt(ctx, last.SequenceNumber+"0", 0)},
			{"a sub-record beyond the last delivered", cp.CheckpointAt(ctx, last.SequenceNumber, last.SubSequenceNumber+1)},
			{"malformed", cp.CheckpointAt(ctx, "12x", 0)},
			{"a negative sub-sequence number", cp.CheckpointAt(ctx, last.SequenceNumber, -1)},
			{"prepared beyond the last delivered", cp.PrepareCheckpoint(ctx, consumer.Record{SequenceNumber: last.SequenceNumber + "0"}, []byte("s"))},
		}
		lastErr = cp.CheckpointRecord(ctx, last)
	}
	start(t, append(fast("range", client, store, "w1"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return p }))...)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no batch delivered")
	}
	if len(batch) != len(seqs) {
		t.Fatalf("first batch of %d records, want all %d put", len(batch), len(seqs))
	}
	if firstErr != nil || lastErr != nil {
		t.Fatalf("checkpoints within the range: %v, %v", firstErr, lastErr)
	}
	for _, r := range refusals {
		if !errors.Is(r.err, consumer.ErrInvalidCheckpoint) || !strings.Contains(r.err.Error(), "shardId-000000000000") {
			t.Errorf("checkpoint %s: %v, want ErrInvalidCheckpoint naming the shard", r.what, r.err)
		}
	}
	last := batch[len(batch)-1]
	want := lease.Checkpoint{SequenceNumber: last.SequenceNumber, SubSequenceNumber: last.SubSequenceNumber}
	l, err := store.GetLease(bg, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint != want || !l.PendingCheckpoint.IsZero() {
		t.Fatalf("lease checkpoint %s, pending %s; want %s and none", l.Checkpoint, l.PendingCheckpoint, want)
	}
}
