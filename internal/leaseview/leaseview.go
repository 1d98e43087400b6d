// Package leaseview shows an application's lease table to operators (one
// row per lease: shard, owner, checkpoint, how far the checkpoint is behind
// the shard's tip, parents, counter, when this process last saw the lease
// renewed) and resets a lease's checkpoint without racing a live owner.
//
// It reads any lease.Store, so it works the same on a DynamoDB table in the
// Java KCL's layout and on a SQLite file. It never writes except in Reset,
// whose writes are the Store's conditional writes on the lease counter.
//
// The lease table records no time: the KCL's heartbeat is the counter, and
// a lease is alive when its counter moves. So "last renewal" is when this
// process saw the counter change (Renewals), never a clock read from the
// table.
package leaseview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/internal/follow"
	"github.com/ksp-project/ksp/lease"
)

// Row is one lease as the view shows it.
type Row struct {
	LeaseKey string `json:"leaseKey"`
	Shard    string `json:"shardId"`
	// Stream is the stream of a multi-stream lease key, or the stream the
	// view was given; empty when unknown.
	Stream string `json:"stream,omitempty"`
	// Owner is the lease owner; empty when nobody owns it.
	Owner string `json:"owner,omitempty"`
	// CheckpointOwner is set during a graceful hand-off: the worker that
	// still holds the lease until it has checkpointed.
	CheckpointOwner string   `json:"checkpointOwner,omitempty"`
	Checkpoint      string   `json:"checkpoint"`
	SubSequence     int64    `json:"subSequenceNumber,omitempty"`
	Parents         []string `json:"parentShardIds,omitempty"`
	Counter         int64    `json:"leaseCounter"`
	// Lag is nil when the stream was not given.
	Lag *Lag `json:"lag,omitempty"`
	// RenewalSeen is when this process last saw the counter change; nil
	// when it has not seen it change (one look shows nothing).
	RenewalSeen *time.Time `json:"lastRenewalSeen,omitempty"`
}

// Lag is how far a checkpoint is behind the tip of its shard, measured by
// reading the shard after the checkpoint (one GetRecords call, of the five
// per second a shard allows).
type Lag struct {
	// Records counts the Kinesis records after the checkpoint (an aggregate
	// counts once, and so does a partly processed one).
	Records int `json:"records"`
	// AtLeast reports that the read stopped at its limit: more may follow.
	AtLeast bool `json:"atLeast,omitempty"`
	// OldestAgeMillis is the age of the oldest unprocessed record (now minus
	// its approximate arrival time), 0 when none is behind: how long the
	// application is behind, as MillisBehindLatest would say at the
	// checkpoint.
	OldestAgeMillis int64 `json:"oldestUnprocessedAgeMillis"`
	// Unknown says why the lag was not measured; the other fields are then
	// zero.
	Unknown string `json:"unknown,omitempty"`
}

func (l *Lag) String() string {
	switch {
	case l == nil:
		return "-"
	case l.Unknown != "":
		return "? (" + l.Unknown + ")"
	case l.Records == 0:
		return "0"
	}
	more := ""
	if l.AtLeast {
		more = "+"
	}
	return fmt.Sprintf("%d%s rec, %s", l.Records, more, (time.Duration(l.OldestAgeMillis) * time.Millisecond).Round(100*time.Millisecond))
}

// Source is where the view reads.
type Source struct {
	Store lease.Store
	// Kinesis, with Stream, measures each lease's lag; nil: no lag.
	Kinesis follow.Client
	// Stream is the stream of single-stream lease keys.
	Stream string
	// LagLimit is the most records one lag read counts (default 1000).
	LagLimit int
}

// ErrNoTable reports an application without a lease table.
var ErrNoTable = errors.New("no lease table")

// Snapshot reads every lease and, when the stream is known, its lag.
func (s *Source) Snapshot(ctx context.Context) ([]Row, error) {
	leases, err := s.Store.ListLeases(ctx)
	switch {
	case errors.Is(err, lease.ErrTableNotFound):
		return nil, ErrNoTable
	case errors.Is(err, lease.ErrCorruptLease):
		// The good leases still show; the error names the bad items.
	case err != nil:
		return nil, err
	}
	rows := make([]Row, 0, len(leases))
	shards := map[string][]types.Shard{} // by stream
	for _, l := range leases {
		r := Row{
			LeaseKey: l.LeaseKey, Shard: l.ShardID(), Stream: s.Stream, Owner: l.LeaseOwner,
			CheckpointOwner: l.CheckpointOwner, Checkpoint: l.Checkpoint.SequenceNumber,
			SubSequence: l.Checkpoint.SubSequenceNumber, Parents: l.ParentShardIDs, Counter: l.LeaseCounter,
		}
		if st := multiStream(l.LeaseKey); st != "" {
			r.Stream = st
		}
		if s.Kinesis != nil && r.Stream != "" {
			list, ok := shards[r.Stream]
			if !ok {
				if list, err = follow.Shards(ctx, s.Kinesis, r.Stream); err != nil {
					return nil, fmt.Errorf("listing the shards of %s: %w", r.Stream, err)
				}
				shards[r.Stream] = list
			}
			lag := s.measure(ctx, r.Stream, list, r.Shard, l.Checkpoint)
			r.Lag = &lag
		}
		rows = append(rows, r)
	}
	return rows, err
}

// multiStream is the stream of a KCL multi-stream lease key
// (account:stream:creationEpoch:shardId), or "".
func multiStream(key string) string {
	if parts := strings.Split(key, ":"); len(parts) == 4 {
		return parts[1]
	}
	return ""
}

// maxLagCalls bounds the GetRecords calls of one lag read: Kinesis may
// answer empty while records follow (MillisBehindLatest > 0).
const maxLagCalls = 3

// measure reads the shard after cp.
func (s *Source) measure(ctx context.Context, stream string, shards []types.Shard, shard string, cp lease.Checkpoint) Lag {
	limit := s.LagLimit
	if limit <= 0 {
		limit = 1000
	}
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard)}
	switch {
	case cp.IsShardEnd():
		return Lag{}
	case cp.IsTrimHorizon():
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case cp.IsLatest(), cp.IsAtTimestamp(), cp.IsZero():
		return Lag{Unknown: "no checkpoint yet"}
	case cp.SubSequenceNumber > 0:
		// Inside an aggregate: the KCL resumes there.
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(cp.SequenceNumber)
	default:
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(cp.SequenceNumber)
	}
	if !slices.ContainsFunc(shards, func(sh types.Shard) bool { return aws.ToString(sh.ShardId) == shard }) {
		return Lag{Unknown: "not a shard of " + stream}
	}
	it, err := s.Kinesis.GetShardIterator(ctx, in)
	if err != nil {
		return Lag{Unknown: reason(err)}
	}
	var lag Lag
	iter := it.ShardIterator
	partial := cp.SubSequenceNumber > 0
	for range maxLagCalls {
		out, err := s.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(limit - lag.Records))})
		if err != nil {
			return Lag{Unknown: reason(err)}
		}
		recs := out.Records
		if partial && len(recs) > 0 {
			// The checkpoint's aggregate is behind only if user records
			// follow the checkpointed one in it.
			partial = false
			if r := recs[0]; aws.ToString(r.SequenceNumber) == cp.SequenceNumber &&
				int64(len(aggregation.Deaggregate(nil, aggregation.KinesisRecord{Data: r.Data, PartitionKey: aws.ToString(r.PartitionKey)}))) <= cp.SubSequenceNumber+1 {
				recs = recs[1:]
			}
		}
		if len(recs) > 0 && lag.Records == 0 {
			if at := recs[0].ApproximateArrivalTimestamp; at != nil {
				lag.OldestAgeMillis = max(0, time.Since(*at).Milliseconds())
			}
		}
		lag.Records += len(recs)
		behind := aws.ToInt64(out.MillisBehindLatest) > 0
		if iter = out.NextShardIterator; iter == nil || !behind {
			return lag
		}
		if lag.Records >= limit {
			lag.AtLeast = true
			return lag
		}
	}
	lag.AtLeast = true
	return lag
}

// reason is an error as a short lag note: its AWS error code when it has
// one (ProvisionedThroughputExceededException when the read was throttled).
func reason(err error) string {
	var code interface{ ErrorCode() string }
	if errors.As(err, &code) {
		return code.ErrorCode()
	}
	return err.Error()
}

// Renewals remembers each lease's counter across snapshots, to tell when
// this process last saw it change. Not safe for concurrent use.
type Renewals struct {
	seen        map[string]renewal
	since, prev time.Time // the first and the previous Observe
	last        time.Time // the latest Observe
}

type renewal struct {
	counter int64
	changed time.Time // zero until a change was seen
}

// Observe records rows' counters at now and sets each row's RenewalSeen.
func (r *Renewals) Observe(rows []Row, now time.Time) {
	if r.seen == nil {
		r.seen, r.since = map[string]renewal{}, now
	}
	r.prev, r.last = r.last, now
	next := make(map[string]renewal, len(rows))
	for i := range rows {
		prev, ok := r.seen[rows[i].LeaseKey]
		cur := renewal{counter: rows[i].Counter, changed: prev.changed}
		if ok && prev.counter != cur.counter {
			cur.changed = now
		}
		if !cur.changed.IsZero() {
			t := cur.changed
			rows[i].RenewalSeen = &t
		}
		next[rows[i].LeaseKey] = cur
	}
	r.seen = next
}

// seenText says when this process saw the row's counter change, as of
// the latest Observe.
func (r *Renewals) seenText(row Row) string {
	switch {
	case row.RenewalSeen == nil && (r.prev.IsZero() || r.since.IsZero()):
		return "-" // one look shows nothing
	case row.RenewalSeen == nil:
		return "not in " + r.last.Sub(r.since).Round(100*time.Millisecond).String()
	case row.RenewalSeen.Equal(r.last):
		return "in last " + r.last.Sub(r.prev).Round(100*time.Millisecond).String()
	}
	return r.last.Sub(*row.RenewalSeen).Round(100*time.Millisecond).String() + " ago"
}
