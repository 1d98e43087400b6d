package consumer

import (
	"context"
	"errors"
)

// IdleProcessor is a RecordProcessor that also acts when no records come:
// after each read of its shard that delivers none (an empty GetRecords,
// every WithIdleTime while the shard is quiet), and whenever twice
// WithIdleTime passes without a read (with WithFanOut, whose subscription
// sends nothing while the shard is quiet), the consumer calls ProcessIdle,
// from the shard's goroutine like the other methods. A processor that
// gathers records across reads (AWS Lambda's batching window) or closes
// time windows uses it to act on the clock. An error or a panic is handled
// as one from ProcessRecords.
type IdleProcessor interface {
	RecordProcessor
	ProcessIdle(ctx context.Context, in ProcessIdleInput) error
}

// ProcessIdleInput is passed to IdleProcessor.ProcessIdle.
type ProcessIdleInput struct {
	ShardID string
	// MillisBehindLatest is how far the empty read was behind the tip of
	// the shard.
	MillisBehindLatest int64
	Checkpointer       *Checkpointer
}

var errIdleTick = errors.New("consumer: idle tick")

// nextBatch waits for the reader's next batch. For an IdleProcessor it
// waits at most twice the idle time, then returns an empty synthetic batch
// (no lag to report), so the processor hears the clock even from a reader
// that sends nothing while the shard is quiet. A batch that arrives as the
// wait ends stays with the reader for the next call.
func (w *worker) nextBatch(ctx context.Context, r shardReader, proc RecordProcessor) (b batch, synthetic bool, err error) {
	if _, ok := proc.(IdleProcessor); !ok {
		b, err = r.Next(ctx)
		return b, false, err
	}
	tctx, cancel := context.WithTimeoutCause(ctx, 2*w.cfg.idle, errIdleTick)
	defer cancel()
	b, err = r.Next(tctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(tctx), errIdleTick) {
		return batch{}, true, nil
	}
	return b, false, err
}
