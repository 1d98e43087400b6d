package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/ksp-project/ksp/lease"
)

// RecordProcessor processes one shard with the Java KCL's lifecycle. The
// consumer calls its methods from one goroutine, in this order: Initialize,
// ProcessRecords any number of times, then exactly one of ShardEnded,
// ShutdownRequested or LeaseLost. A processor is never reused for another
// shard or another lease of the same shard.
//
// An error or a panic from Initialize or ProcessRecords makes the consumer
// start again from the shard's last checkpoint after a back-off: records
// not checkpointed are delivered again. What to checkpoint before failing
// is the processor's choice.
type RecordProcessor interface {
	// Initialize is called before the first batch, with the checkpoint the
	// shard resumes from.
	Initialize(ctx context.Context, in InitializeInput) error
	// ProcessRecords is called with each batch of the shard, in order. It
	// may checkpoint through in.Checkpointer, at most up to the batch's last
	// record. ctx ends when the lease is lost or the shutdown times out.
	ProcessRecords(ctx context.Context, in ProcessRecordsInput) error
	// ShardEnded is called once every record of a closed shard has been
	// processed. The processor must call in.Checkpointer.Checkpoint, which
	// writes SHARD_END and lets the shard's children start; until it does,
	// ShardEnded is called again after a back-off.
	ShardEnded(ctx context.Context, in ShardEndedInput) error
	// ShutdownRequested is called when the worker shuts down gracefully,
	// after the last batch returned. Checkpointing here means the next owner
	// replays nothing; the lease is released after it returns.
	ShutdownRequested(ctx context.Context, in ShutdownRequestedInput) error
	// LeaseLost is called when another worker took the lease or it could
	// not be renewed; nothing can be checkpointed any more.
	LeaseLost(ctx context.Context, in LeaseLostInput)
}

// ProcessorFactory returns the processor for one shard.
type ProcessorFactory func(shardID string) RecordProcessor

// Handler is the simple processing API: it gets each batch of a shard, in
// order, never empty. Returning nil checkpoints the batch; an error (or a
// panic) makes the consumer deliver the batch again, from the last
// checkpoint, after a back-off. A *PartialBatchError first checkpoints the
// record it names, so only the records after it are delivered again. ctx
// ends when the lease is lost or the shutdown times out.
type Handler func(ctx context.Context, records []Record) error

// PartialBatchError is what a Handler returns when it processed its batch up
// to and including Processed but failed on a later record. The consumer
// checkpoints Processed, then delivers the records after it again, after a
// back-off, as for any other error. A zero Processed means no record was
// processed: nothing is checkpointed. Processed must be a record of the
// batch; any other makes the checkpoint fail with ErrInvalidCheckpoint, and
// the whole batch is delivered again.
type PartialBatchError struct {
	Processed Record
	Err       error // why the rest of the batch failed
}

func (e *PartialBatchError) Error() string {
	return fmt.Sprintf("consumer: batch processed up to %s/%d: %v", e.Processed.SequenceNumber, e.Processed.SubSequenceNumber, e.Err)
}

func (e *PartialBatchError) Unwrap() error { return e.Err }

// InitializeInput is passed to RecordProcessor.Initialize.
type InitializeInput struct {
	ShardID string
	// Stream is the shard's stream (the one of WithStream, or in
	// multi-stream mode one of WithStreams).
	Stream string
	// Checkpoint is where processing resumes: records at or before it are
	// not delivered. It is a sentinel (TRIM_HORIZON, LATEST, AT_TIMESTAMP)
	// when the shard has no checkpoint yet.
	Checkpoint lease.Checkpoint
}

// ProcessRecordsInput is passed to RecordProcessor.ProcessRecords.
type ProcessRecordsInput struct {
	ShardID string
	// Records are the batch's user records, aggregates taken apart.
	Records []Record
	// MillisBehindLatest is how far the batch is behind the tip of the shard.
	MillisBehindLatest int64
	Checkpointer       *Checkpointer
}

// ShardEndedInput is passed to RecordProcessor.ShardEnded.
type ShardEndedInput struct {
	ShardID      string
	Checkpointer *Checkpointer
}

// ShutdownRequestedInput is passed to RecordProcessor.ShutdownRequested.
type ShutdownRequestedInput struct {
	ShardID      string
	Checkpointer *Checkpointer
}

// LeaseLostInput is passed to RecordProcessor.LeaseLost.
type LeaseLostInput struct {
	ShardID string
}

// handlerProcessor runs a Handler as a RecordProcessor.
type handlerProcessor struct{ h Handler }

func (p handlerProcessor) Initialize(context.Context, InitializeInput) error { return nil }

func (p handlerProcessor) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	err := p.h(ctx, in.Records)
	if err == nil {
		return in.Checkpointer.Checkpoint(ctx)
	}
	var partial *PartialBatchError
	if errors.As(err, &partial) && partial.Processed.SequenceNumber != "" {
		if cerr := in.Checkpointer.CheckpointRecord(ctx, partial.Processed); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	return err
}

func (p handlerProcessor) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (p handlerProcessor) ShutdownRequested(context.Context, ShutdownRequestedInput) error {
	return nil // every processed batch is already checkpointed
}

func (p handlerProcessor) LeaseLost(context.Context, LeaseLostInput) {}
