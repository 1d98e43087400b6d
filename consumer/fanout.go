package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/kds"
)

// FanOutAPI is what enhanced fan-out needs of the Kinesis client beyond
// KinesisAPI; *kinesis.Client satisfies it.
type FanOutAPI interface {
	KinesisAPI
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
}

var _ FanOutAPI = (*kinesis.Client)(nil)

// fanOut is a consumer's registration as a stream consumer of each stream
// it reads (one in single-stream mode), resolved once per stream
// (registering it when missing) and shared by its shard readers.
type fanOut struct {
	name string
	k    FanOutAPI

	mu   sync.Mutex        // guards: arns
	arns map[string]string // by stream name
}

// consumerARN returns the ARN of the stream's ACTIVE stream consumer,
// registering it and waiting for ACTIVE the first time. Readers starting
// together may each do that (registering twice is harmless); no lock is held
// across the calls.
func (f *fanOut) consumerARN(ctx context.Context, stream string) (string, error) {
	f.mu.Lock()
	arn := f.arns[stream]
	f.mu.Unlock()
	if arn != "" {
		return arn, nil
	}
	sum, err := f.k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return "", fmt.Errorf("consumer: describing stream %s: %w", stream, err)
	}
	streamARN := sum.StreamDescriptionSummary.StreamARN
	_, err = f.k.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String(f.name)})
	if err != nil && kds.Code(err) != kds.ErrCodeResourceInUse { // in use: already registered
		return "", fmt.Errorf("consumer: registering stream consumer %s: %w", f.name, err)
	}
	for attempt := 0; ; attempt++ {
		out, err := f.k.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String(f.name)})
		if err != nil {
			return "", fmt.Errorf("consumer: describing stream consumer %s: %w", f.name, err)
		}
		d := out.ConsumerDescription
		switch d.ConsumerStatus {
		case types.ConsumerStatusActive:
			f.mu.Lock()
			if f.arns == nil {
				f.arns = map[string]string{}
			}
			f.arns[stream] = aws.ToString(d.ConsumerARN)
			f.mu.Unlock()
			return aws.ToString(d.ConsumerARN), nil
		case types.ConsumerStatusDeleting:
			return "", fmt.Errorf("consumer: stream consumer %s is being deleted", f.name)
		}
		if err := backoff.Sleep(ctx, backoff.Delay(50*time.Millisecond, time.Second, attempt)); err != nil {
			return "", err
		}
	}
}

// forget drops a consumer ARN that Kinesis no longer knows, so the next
// reader to need it registers the consumer again.
func (f *fanOut) forget(stream, arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.arns[stream] == arn {
		delete(f.arns, stream)
	}
}

// subscriber returns the client to subscribe with. aws-sdk-go-v2 decodes
// every event stream of one client with a shared codec (a data race between
// concurrent subscriptions), so each subscription of a *kinesis.Client gets
// a copy with a protocol of its own (kinesis.New builds a fresh one).
func (f *fanOut) subscriber() FanOutAPI {
	k := f.k
	if w, ok := k.(fixedFanOut); ok {
		k = w.fo
	}
	if c, ok := k.(*kinesis.Client); ok {
		return fixKinesis(kinesis.New(c.Options())).(FanOutAPI)
	}
	return f.k
}

// fanOutReader reads a shard with SubscribeToShard: events are pushed by
// Kinesis and handed to the processor through a buffer of cfg.prefetch
// batches (a slow processor holds the subscription back, bounded). When a
// subscription ends (after its lifetime, or broken) the reader subscribes
// again after the last ContinuationSequenceNumber, so nothing is replayed or
// skipped; at the end of the shard it reports the ChildShards.
type fanOutReader struct {
	prefetch
	cfg     *config
	fo      *fanOut
	stream  string
	shardID string
	log     *slog.Logger
}

func newFanOutReader(ctx context.Context, cfg *config, fo *fanOut, log *slog.Logger, stream, shardID string, from startPosition) *fanOutReader {
	r := &fanOutReader{cfg: cfg, fo: fo, stream: stream, shardID: shardID, log: log}
	r.start(ctx, cfg.prefetch, func(ctx context.Context) { r.run(ctx, from) })
	return r
}

func (r *fanOutReader) run(ctx context.Context, from startPosition) {
	var (
		cont  string // the last ContinuationSequenceNumber: where the next subscription starts
		fails int
	)
	for ctx.Err() == nil {
		arn, err := r.fo.consumerARN(ctx, r.stream)
		if err != nil {
			if !r.failed(ctx, "RegisterStreamConsumer", err, &fails) {
				return
			}
			continue
		}
		out, err := r.fo.subscriber().SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
			ConsumerARN: aws.String(arn), ShardId: aws.String(r.shardID), StartingPosition: r.position(from, cont),
		})
		if err != nil {
			if kds.Code(err) == kds.ErrCodeResourceNotFound {
				r.fo.forget(r.stream, arn) // deregistered meanwhile: register again
			}
			if !r.failed(ctx, "SubscribeToShard", err, &fails) {
				return
			}
			continue
		}
		ended, delivered, err := r.consume(ctx, out.GetStream(), &cont)
		if kds.Code(err) == kds.ErrCodeResourceNotFound {
			r.fo.forget(r.stream, arn)
		}
		if ended || ctx.Err() != nil {
			return
		}
		if delivered {
			fails = 0
		}
		if err == nil {
			// The subscription's lifetime is over: subscribe again, at once
			// unless it carried nothing (then back off, so a server that
			// ends subscriptions early is not called in a tight loop).
			r.log.Debug("subscription ended; subscribing again", "after", cont)
			if !delivered {
				if backoff.Sleep(ctx, backoff.Delay(50*time.Millisecond, r.cfg.retryMax, fails)) != nil {
					return
				}
				fails++
			}
			continue
		}
		if !r.failed(ctx, "subscription", err, &fails) {
			return
		}
	}
}

// consume hands one subscription's events to the processor. It reports
// whether the shard ended, whether any event arrived, and how the stream
// ended (nil: cleanly).
func (r *fanOutReader) consume(ctx context.Context, stream *kinesis.SubscribeToShardEventStream, cont *string) (ended, delivered bool, err error) {
	defer stream.Close()
	for {
		var ev types.SubscribeToShardEventStream
		var open bool
		select {
		case ev, open = <-stream.Events():
		case <-ctx.Done():
			return false, delivered, ctx.Err()
		}
		if !open {
			return false, delivered, stream.Err()
		}
		e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			continue // an event type this client does not know
		}
		delivered = true
		v := e.Value
		if v.ContinuationSequenceNumber != nil {
			*cont = *v.ContinuationSequenceNumber
		}
		b := batch{records: v.Records, millisBehind: aws.ToInt64(v.MillisBehindLatest), end: len(v.ChildShards) > 0, children: v.ChildShards}
		if len(b.records) == 0 && !b.end {
			r.cfg.hooks.shardLag(r.shardID, b.millisBehind)
			continue
		}
		select {
		case r.ch <- b:
		case <-ctx.Done():
			return false, delivered, ctx.Err()
		}
		if b.end {
			return true, delivered, nil
		}
	}
}

// position is where a subscription starts: after the last continuation
// number, or the reader's start (at a checkpoint, not after it: the shard
// consumer skips the user records already checkpointed).
func (r *fanOutReader) position(from startPosition, cont string) *types.StartingPosition {
	switch {
	case cont != "":
		return &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(cont)}
	case from.cp.IsTrimHorizon():
		return &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
	case from.cp.IsLatest():
		return &types.StartingPosition{Type: types.ShardIteratorTypeLatest}
	case from.cp.IsAtTimestamp():
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(from.ts)}
	}
	return &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(from.cp.SequenceNumber)}
}

// failed logs a failed call and backs off with jitter; it reports false
// when ctx ended. A subscription refused because the last one is less than
// 5 s old (ResourceInUseException) or for the call rate is retried the same way.
func (r *fanOutReader) failed(ctx context.Context, op string, err error, fails *int) bool {
	return retry(ctx, r.cfg, r.log, r.shardID, op, err, 50*time.Millisecond, fails)
}

// validConsumerName checks a stream consumer name as Kinesis does.
func validConsumerName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
