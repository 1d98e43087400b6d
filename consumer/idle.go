package consumer

import "context"

// IdleProcessor is a RecordProcessor that also acts when no records come:
// after each read of its shard that delivers none (an empty GetRecords,
// every WithIdleTime while the shard is quiet), the consumer calls
// ProcessIdle, from the shard's goroutine like the other methods. A
// processor that gathers records across reads (AWS Lambda's batching
// window) or closes time windows uses it to act on the clock. An error or a
// panic is handled as one from ProcessRecords. The fan-out reader skips
// empty events, so with WithFanOut ProcessIdle is not called.
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
