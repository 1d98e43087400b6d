// Package follow reads every shard of a stream as `tail -f` reads a file:
// from a starting position to the tip, then waiting for more, across
// resharding, with the KPL's aggregates taken apart. It holds no lease and
// writes nothing: it uses only ListShards, GetShardIterator and GetRecords,
// so it works against any Kinesis-compatible server.
//
// Guarantees:
//   - Records of one shard reach the callback in sequence order, and a
//     child shard is read only after each of its parents has been read to
//     its end: a partition key's records arrive in the order they were put,
//     across splits and merges.
//   - The callback is never called concurrently.
//   - A record is delivered once per Run: after an expired iterator, reading
//     resumes just after the last record delivered.
//   - Aggregated records are split into their user records; user records
//     outside their shard's hash range are dropped, as the KCL drops them
//     (see aggregation.DeaggregateShard).
package follow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/aggregation"
)

// Client is the part of *kinesis.Client that follow uses.
type Client interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ Client = (*kinesis.Client)(nil)

// ErrStop, returned by the callback, ends Run without an error.
var ErrStop = errors.New("follow: stop")

// Position is where reading starts.
type Position struct {
	// Type is LATEST (the zero value means LATEST), TRIM_HORIZON,
	// AT_TIMESTAMP or AT_SEQUENCE_NUMBER.
	Type types.ShardIteratorType
	// Time is the AT_TIMESTAMP position.
	Time time.Time
	// Sequence is the AT_SEQUENCE_NUMBER position, in Options.Shard.
	Sequence string
}

// Options say what to follow.
type Options struct {
	Stream string
	From   Position
	// Shard, when set, limits reading to that shard and its descendants. It
	// is required with AT_SEQUENCE_NUMBER.
	Shard string
	// Poll is the wait between GetRecords calls of a shard that is at its
	// tip. Default 1s (Kinesis allows 5 calls per shard and second).
	Poll time.Duration
	// UntilIdle, when positive, ends Run (without an error) once no record
	// has arrived for this long.
	UntilIdle time.Duration
}

// Record is a user record and the shard it was read from.
type Record struct {
	Shard string
	aggregation.UserRecord
}

// follower is one Run.
type follower struct {
	c    Client
	opts Options
	fn   func(Record) error

	emitMu  sync.Mutex // serializes fn; guards: emitErr
	emitErr error      // fn's first error: fn is not called after it

	mu      sync.Mutex // guards: shards, started, done
	shards  map[string]types.Shard
	started map[string]bool
	done    map[string]bool

	lastRecord atomic.Int64 // unix nanos of the last record (or of the start)
	ended      chan string  // shards read to their end
	wg         sync.WaitGroup
}

// Run follows the stream and calls fn for each user record until ctx ends
// (returning nil), fn returns ErrStop (nil) or another error (that error),
// UntilIdle passes (nil), or a Kinesis call fails for good (its error).
func Run(ctx context.Context, c Client, opts Options, fn func(Record) error) error {
	if opts.Stream == "" {
		return errors.New("follow: no stream")
	}
	if opts.From.Type == "" {
		opts.From.Type = types.ShardIteratorTypeLatest
	}
	if opts.From.Type == types.ShardIteratorTypeAtSequenceNumber && opts.Shard == "" {
		return errors.New("a sequence number belongs to one shard: name it (--shard)")
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	f := &follower{
		c: c, opts: opts, fn: fn,
		shards: map[string]types.Shard{}, started: map[string]bool{}, done: map[string]bool{},
		ended: make(chan string, 16),
	}
	f.lastRecord.Store(time.Now().UnixNano())
	ctx, cancel := context.WithCancelCause(ctx)
	defer f.wg.Wait()
	defer cancel(nil)

	if err := f.list(ctx); err != nil {
		return err
	}
	if opts.Shard != "" && !f.known(opts.Shard) {
		return fmt.Errorf("stream %s has no shard %s", opts.Stream, opts.Shard)
	}
	f.skipInitial()
	f.startReady(ctx, cancel, true)
	for {
		var idle <-chan time.Time
		if opts.UntilIdle > 0 {
			idle = time.After(time.Until(time.Unix(0, f.lastRecord.Load()).Add(opts.UntilIdle)))
		}
		select {
		case <-ctx.Done():
			return f.result(ctx)
		case <-idle:
			if time.Since(time.Unix(0, f.lastRecord.Load())) >= opts.UntilIdle {
				return nil
			}
		case <-f.ended:
			// A shard ended: its children appear in the listing now.
			if err := f.list(ctx); err != nil {
				if ctx.Err() != nil {
					return f.result(ctx)
				}
				return err
			}
			f.startReady(ctx, cancel, false)
		}
	}
}

// result is Run's answer once ctx has ended.
func (f *follower) result(ctx context.Context) error {
	err := context.Cause(ctx)
	if errors.Is(err, ErrStop) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

func (f *follower) known(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.shards[id]
	return ok
}

// maxPages bounds a listing, so a misbehaving endpoint cannot loop us.
const maxPages = 1000

// Shards lists every shard of a stream, open and closed, all pages.
func Shards(ctx context.Context, c Client, stream string) ([]types.Shard, error) {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for range maxPages {
		out, err := c.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	return nil, fmt.Errorf("listing the shards of %s: more than %d pages", stream, maxPages)
}

// list adds every shard of the stream to f.shards.
func (f *follower) list(ctx context.Context) error {
	all, err := Shards(ctx, f.c, f.opts.Stream)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range all {
		f.shards[aws.ToString(s.ShardId)] = s
	}
	return nil
}

// skipInitial marks as done what the starting position skips: from LATEST,
// every closed shard (all its records are older than LATEST).
func (f *follower) skipInitial() {
	if f.opts.From.Type != types.ShardIteratorTypeLatest {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range f.shards {
		if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
			f.done[id] = true
		}
	}
}

// followedLocked reports whether shard id is in scope: all shards, or
// Options.Shard and its descendants. The walk up the lineage visits each
// shard once, so a listing whose parents loop (a bad server) ends it.
func (f *follower) followedLocked(id string) bool {
	if f.opts.Shard == "" {
		return true
	}
	seen := map[string]bool{}
	todo := []string{id}
	for len(todo) > 0 {
		id = todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if id == f.opts.Shard {
			return true
		}
		s, ok := f.shards[id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		todo = append(todo, parents(s)...)
	}
	return false
}

func parents(s types.Shard) []string {
	var ps []string
	for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
		if p != nil && *p != "" {
			ps = append(ps, *p)
		}
	}
	return ps
}

// startReady starts a reader for every followed shard not yet started
// whose parents are done (or out of scope, or expired from the listing).
// initial says whether these shards were in the first listing, which the
// starting position applies to; shards appearing later are read from their
// start.
func (f *follower) startReady(ctx context.Context, cancel context.CancelCauseFunc, initial bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range f.shards {
		if f.started[id] || f.done[id] || !f.followedLocked(id) {
			continue
		}
		ready := true
		for _, p := range parents(s) {
			if _, listed := f.shards[p]; listed && f.followedLocked(p) && !f.done[p] {
				ready = false
			}
		}
		if !ready {
			continue
		}
		pos := f.opts.From
		switch pos.Type {
		case types.ShardIteratorTypeLatest:
			if !initial {
				pos = Position{Type: types.ShardIteratorTypeTrimHorizon} // created after the start
			}
		case types.ShardIteratorTypeAtSequenceNumber:
			if id != f.opts.Shard {
				pos = Position{Type: types.ShardIteratorTypeTrimHorizon} // a descendant
			}
		}
		f.started[id] = true
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := f.read(ctx, s, pos); err != nil {
				cancel(err)
				return
			}
			f.mu.Lock()
			f.done[id] = true
			f.mu.Unlock()
			select {
			case f.ended <- id:
			case <-ctx.Done():
			}
		}()
	}
}
