package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/sdkhttp"
)

// pollingReader reads a shard with GetShardIterator and GetRecords in its
// own goroutine, up to cfg.prefetch batches ahead of the processor. When
// the buffer is full the goroutine waits, so a slow processor holds at most
// prefetch batches in memory.
type pollingReader struct {
	prefetch
	cfg     *config
	stream  string
	shardID string
	log     *slog.Logger
}

func newPollingReader(ctx context.Context, cfg *config, log *slog.Logger, stream, shardID string, from startPosition) *pollingReader {
	r := &pollingReader{cfg: cfg, stream: stream, shardID: shardID, log: log}
	r.start(ctx, cfg.prefetch, func(ctx context.Context) { r.run(ctx, from) })
	return r
}

func (r *pollingReader) run(ctx context.Context, from startPosition) {
	var (
		iter    *string
		lastSeq string // last record read: an expired iterator resumes after it
		fails   int
	)
	for ctx.Err() == nil {
		if iter == nil {
			it, err := r.iterator(ctx, from, lastSeq)
			if err != nil {
				if !r.failed(ctx, "GetShardIterator", err, &fails) {
					return
				}
				continue
			}
			iter = it
		}
		called := time.Now()
		slabs := r.cfg.slabs.Slabs()
		out, err := r.cfg.kinesis.GetRecords(sdkhttp.WithSlabs(ctx, slabs), &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(r.cfg.maxRecords))})
		if err != nil {
			slabs.Release()
			if kds.Code(err) == kds.ErrCodeExpiredIterator {
				// The iterator sat unused too long (a slow processor
				// kept the buffer full): get a fresh one where we were.
				r.log.Info("shard iterator expired; resuming after the last record read", "after", lastSeq)
				iter = nil
				continue
			}
			if !r.failed(ctx, "GetRecords", err, &fails) {
				return
			}
			continue
		}
		fails = 0
		if n := len(out.Records); n > 0 {
			lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
		}
		b := batch{records: out.Records, slabs: slabs, millisBehind: aws.ToInt64(out.MillisBehindLatest), end: out.NextShardIterator == nil, children: out.ChildShards}
		select {
		case r.ch <- b:
		case <-ctx.Done():
			return
		}
		if b.end {
			return
		}
		iter = out.NextShardIterator
		// The idle time runs from this call, as the KCL counts
		// idleTimeBetweenReads from its last call: the round trip and the
		// wait for room in the prefetch buffer are part of it, so a
		// record waits at most one idle time for the call that reads it.
		if backoff.Sleep(ctx, r.cfg.idle-time.Since(called)) != nil {
			return
		}
	}
}

// failed logs a failed call, counts throttles and backs off; it reports
// false when ctx ended.
func (r *pollingReader) failed(ctx context.Context, op string, err error, fails *int) bool {
	return retry(ctx, r.cfg, r.log, r.shardID, op, err, max(r.cfg.idle, 50*time.Millisecond), fails)
}

func (r *pollingReader) iterator(ctx context.Context, from startPosition, lastSeq string) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(r.stream), ShardId: aws.String(r.shardID)}
	switch {
	case lastSeq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(lastSeq)
	case from.cp.IsTrimHorizon():
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case from.cp.IsLatest():
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	case from.cp.IsAtTimestamp():
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(from.ts)
	default:
		// At, not after: the record may be an aggregate only partly
		// processed; the shard consumer skips what was checkpointed.
		in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(from.cp.SequenceNumber)
	}
	out, err := r.cfg.kinesis.GetShardIterator(ctx, in)
	if err != nil {
		return nil, err
	}
	if out.ShardIterator == nil {
		return nil, errors.New("GetShardIterator returned no iterator")
	}
	return out.ShardIterator, nil
}
