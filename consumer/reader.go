package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/sdkhttp"
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
	records []types.Record
	// slabs hold the records' data; released once they were processed
	// (Record.Data is valid until the processing call returns).
	slabs        *sdkhttp.Slabs
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
type readerFactory func(ctx context.Context, stream, shardID string, from startPosition) shardReader

var errReaderClosed = errors.New("consumer: reader closed")

// prefetch is what the polling and fan-out readers share: the bounded
// buffer between the reader's goroutine and the processor, and that
// goroutine's life.
type prefetch struct {
	ch     chan batch
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start runs fill in a tracked goroutine on a context that Close cancels;
// fill sends batches on p.ch (at most size ahead), which is closed when fill
// returns.
func (p *prefetch) start(ctx context.Context, size int, fill func(ctx context.Context)) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.ch = make(chan batch, size)
	p.wg.Go(func() {
		defer close(p.ch)
		fill(ctx)
	})
}

func (p *prefetch) Next(ctx context.Context) (batch, error) {
	if ctx.Err() != nil {
		// select picks at random among ready cases: never hand out a
		// prefetched batch once the shard must stop (its lease was lost).
		return batch{}, context.Cause(ctx)
	}
	select {
	case b, ok := <-p.ch:
		if !ok {
			return batch{}, errReaderClosed
		}
		return b, nil
	case <-ctx.Done():
		return batch{}, context.Cause(ctx)
	}
}

// Close stops the goroutine (lease lost, shutdown), waits for it and drops
// what it fetched ahead.
func (p *prefetch) Close() {
	p.cancel()
	p.wg.Wait()
	for range p.ch {
	}
}

// retry logs a reader's failed call op (a throttle also goes to the hooks),
// backs off from base and reports whether to try again: false once ctx has
// ended.
func retry(ctx context.Context, cfg *config, log *slog.Logger, shardID, op string, err error, base time.Duration, fails *int) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	case kds.IsThrottle(err):
		cfg.hooks.throttle(shardID)
		log.Debug(op+" throttled; backing off", "err", err, "attempt", *fails)
	case kds.Code(err) == kds.ErrCodeResourceInUse: // fan-out: the last subscription to this shard is recent
		log.Debug(op+": the consumer's last subscription to this shard is recent; backing off", "err", err, "attempt", *fails)
	default:
		log.Warn(op+" failed; retrying", "err", err, "attempt", *fails)
	}
	d := backoff.Delay(base, cfg.retryMax, *fails)
	*fails++
	return backoff.Sleep(ctx, d) == nil
}
