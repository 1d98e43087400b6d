package consumer

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/lease"
)

// shardReader delivers one shard's records in order, in batches, from a
// start position. Polling (GetRecords, pollingReader) implements it;
// enhanced fan-out (SubscribeToShard) plugs in behind the same interface.
// A reader handles throttling, expired iterators and transient errors
// itself, so Next only fails when ctx ends or the reader is closed.
type shardReader interface {
	// Next returns the next batch, waiting for it. Once ctx has ended it
	// returns no batch, even one already fetched.
	Next(ctx context.Context) (batch, error)
	// Close stops the reader, waits for its goroutines and drops the
	// batches fetched ahead.
	Close()
}

// batch is one read of a shard.
type batch struct {
	records      []types.Record
	millisBehind int64
	// end reports that the shard is closed and every record has been read;
	// children lists the shards that replace it, when Kinesis said.
	end      bool
	children []types.ChildShard
}

// startPosition is where a reader starts: a sequence number (at that
// record: the shard consumer skips the user records already checkpointed)
// or a sentinel, with the timestamp for AT_TIMESTAMP.
type startPosition struct {
	cp lease.Checkpoint
	ts time.Time
}

// readerFactory starts a reader for a shard; the reader stops when ctx
// ends.
type readerFactory func(ctx context.Context, shardID string, from startPosition) shardReader
