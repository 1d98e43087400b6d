package follow

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/kds"
)

// maxBackoff caps the wait after a throttle.
const maxBackoff = 5 * time.Second

// read reads one shard from pos to its end (nil) or until ctx ends or a
// call fails for good.
func (f *follower) read(ctx context.Context, s types.Shard, pos Position) error {
	id := aws.ToString(s.ShardId)
	var hashRange *kds.HashKeyRange
	if hr := s.HashKeyRange; hr != nil {
		start, err1 := kds.ParseHashKey(aws.ToString(hr.StartingHashKey))
		end, err2 := kds.ParseHashKey(aws.ToString(hr.EndingHashKey))
		if err1 == nil && err2 == nil {
			hashRange = &kds.HashKeyRange{Start: start, End: end}
		}
	}
	iter, err := f.iterator(ctx, id, pos)
	if err != nil {
		return err
	}
	var (
		last      string // sequence number of the last Kinesis record delivered
		throttles int    // in a row
		users     []aggregation.UserRecord
	)
	for {
		out, err := f.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		switch {
		case err == nil:
			throttles = 0
		case ctx.Err() != nil:
			return nil
		case kds.IsThrottle(err):
			if err := backoff.Sleep(ctx, backoff.Delay(f.opts.Poll, maxBackoff, throttles)); err != nil {
				return nil
			}
			throttles++
			continue
		case kds.Code(err) == kds.ErrCodeExpiredIterator:
			from := pos
			if last != "" {
				from = Position{Type: types.ShardIteratorTypeAfterSequenceNumber, Sequence: last}
			}
			if iter, err = f.iterator(ctx, id, from); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("reading shard %s: %w", id, err)
		}
		if len(out.Records) > 0 {
			f.lastRecord.Store(time.Now().UnixNano())
		}
		for _, r := range out.Records {
			kr := aggregation.KinesisRecord{
				Data: r.Data, PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: aws.ToString(r.SequenceNumber),
				ApproximateArrivalTimestamp: aws.ToTime(r.ApproximateArrivalTimestamp),
			}
			if hashRange != nil {
				users, _ = aggregation.DeaggregateShard(users[:0], kr, *hashRange)
			} else {
				users = aggregation.Deaggregate(users[:0], kr)
			}
			for _, u := range users {
				if err := f.emit(Record{Shard: id, UserRecord: u}); err != nil {
					return err
				}
			}
			last = kr.SequenceNumber
		}
		if out.NextShardIterator == nil {
			return nil // the shard is closed and read to its end
		}
		iter = out.NextShardIterator
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			if err := backoff.Sleep(ctx, f.opts.Poll); err != nil {
				return nil
			}
		}
	}
}

// emit calls fn, one record at a time, and never again once it failed
// or asked to stop: other shards' readers may still be delivering.
func (f *follower) emit(r Record) error {
	f.emitMu.Lock()
	defer f.emitMu.Unlock()
	if f.emitErr != nil {
		return f.emitErr
	}
	f.emitErr = f.fn(r)
	return f.emitErr
}

func (f *follower) iterator(ctx context.Context, shard string, pos Position) (*string, error) {
	in := &kinesis.GetShardIteratorInput{
		StreamName: aws.String(f.opts.Stream), ShardId: aws.String(shard), ShardIteratorType: pos.Type,
	}
	switch pos.Type {
	case types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(pos.Time)
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		in.StartingSequenceNumber = aws.String(pos.Sequence)
	}
	out, err := f.c.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("shard %s from %s: %w", shard, pos.Type, err)
	}
	return out.ShardIterator, nil
}
