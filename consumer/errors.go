package consumer

import "errors"

// Errors the consumer returns for its own conditions. Check them with
// errors.Is; the error also says which shard and which value.
var (
	// ErrLeaseLost reports that the worker no longer holds the shard's
	// lease (another worker took it, or it could not be renewed within the
	// failover time), so nothing can be checkpointed.
	ErrLeaseLost = errors.New("consumer: lease lost")
	// ErrInvalidCheckpoint reports a checkpoint outside what may be
	// checkpointed: before the last checkpoint, after the last record
	// delivered, or not a well-formed sequence number (the KCL's
	// ShardRecordProcessorCheckpointer range check; like it, a number
	// within the range is not looked up among the records delivered).
	ErrInvalidCheckpoint = errors.New("consumer: invalid checkpoint")
	// ErrShutdown reports a checkpoint attempted after the shard's
	// processor was shut down.
	ErrShutdown = errors.New("consumer: shard processor shut down")
	// ErrRunning reports a second concurrent call of Run.
	ErrRunning = errors.New("consumer: already running")
	// ErrPanic wraps a panic recovered from a processor or handler.
	ErrPanic = errors.New("consumer: processor panicked")
)
