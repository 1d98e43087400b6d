package consumer

import (
	"context"
	"fmt"
	"sync"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease"
)

// Checkpointer records how far a shard has been processed. A checkpoint
// must lie between the last checkpoint and the last record delivered to the
// processor, so nothing is ever checkpointed past a record that was not
// processed. It is safe for concurrent use, but a processor normally calls
// it from its own methods.
type Checkpointer struct {
	shard *shardLease

	mu sync.Mutex // guards: last, largest, ended, closed
	// last is the last checkpoint written (or the lease's at start).
	last lease.Checkpoint
	// largest is the last record delivered; SHARD_END once the shard ended
	// and every record was delivered.
	largest lease.Checkpoint
	closed  bool
}

// Checkpoint checkpoints the last record delivered, or SHARD_END in
// ShardEnded.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	c.mu.Lock()
	cp := c.largest
	c.mu.Unlock()
	if cp.IsZero() || cp.Compare(c.Last()) <= 0 {
		return nil // nothing new was delivered
	}
	return c.write(ctx, cp)
}

// CheckpointAt checkpoints the user record (sequenceNumber,
// subSequenceNumber), which must have been delivered.
func (c *Checkpointer) CheckpointAt(ctx context.Context, sequenceNumber string, subSequenceNumber int64) error {
	if !kds.ValidSequenceNumber(sequenceNumber) || subSequenceNumber < 0 {
		return fmt.Errorf("%w: %q/%d is not a sequence number of shard %s", ErrInvalidCheckpoint, sequenceNumber, subSequenceNumber, c.shard.shardID)
	}
	return c.write(ctx, lease.Checkpoint{SequenceNumber: sequenceNumber, SubSequenceNumber: subSequenceNumber})
}

// CheckpointRecord checkpoints r, which must have been delivered.
func (c *Checkpointer) CheckpointRecord(ctx context.Context, r Record) error {
	return c.CheckpointAt(ctx, r.SequenceNumber, r.SubSequenceNumber)
}

// PrepareCheckpoint stores state with r as the lease's pending checkpoint
// (the KCL's two-phase prepareCheckpoint with application state), without
// moving the checkpoint: the next checkpoint written removes both, and until
// then a processor that starts on the shard, here or on another worker,
// finds them in InitializeInput. r must have been delivered.
func (c *Checkpointer) PrepareCheckpoint(ctx context.Context, r Record, state []byte) error {
	cp := lease.Checkpoint{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
	if err := c.check(cp); err != nil {
		return err
	}
	return c.shard.write(ctx, "prepare checkpoint", func(ctx context.Context, counter int64) (lease.Lease, error) {
		return c.shard.w.cfg.store.PrepareCheckpoint(ctx, c.shard.key, c.shard.w.id, counter, cp, state)
	})
}

// Last returns the last checkpoint written.
func (c *Checkpointer) Last() lease.Checkpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// check reports why cp cannot be checkpointed: the shard stopped, or cp
// lies outside [last checkpoint, last record delivered].
func (c *Checkpointer) check(cp lease.Checkpoint) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("%w: shard %s", ErrShutdown, c.shard.shardID)
	}
	last, largest := c.last, c.largest
	c.mu.Unlock()
	if cp.Compare(last) < 0 || largest.IsZero() || cp.Compare(largest) > 0 {
		return fmt.Errorf("%w: %s on shard %s is outside [last checkpoint %s, last record delivered %s]",
			ErrInvalidCheckpoint, cp, c.shard.shardID, last, largest)
	}
	return nil
}

func (c *Checkpointer) write(ctx context.Context, cp lease.Checkpoint) error {
	if err := c.check(cp); err != nil {
		return err
	}
	err := c.shard.checkpoint(ctx, cp)
	c.shard.w.cfg.hooks.checkpoint(c.shard.shardID, cp, err)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if cp.Compare(c.last) > 0 {
		c.last = cp
	}
	c.mu.Unlock()
	return nil
}

// delivered records that the processor got everything up to cp.
func (c *Checkpointer) delivered(cp lease.Checkpoint) {
	c.mu.Lock()
	c.largest = cp
	c.mu.Unlock()
}

func (c *Checkpointer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
