package consumer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease"
)

// Multi-stream mode (WithStreams) follows several streams with one lease
// table, as the KCL's multi-stream mode does (processor/MultiStreamTracker):
// each shard's lease is keyed account:streamName:creationEpoch:shardId
// (lease.MultiStreamLeaseKey), so a Java KCL multi-stream application and
// ksp workers can share the table, and the worker takes, balances and hands
// over the leases of all its streams together. Leases of streams it does not
// follow are left alone.

// StreamDescriber is what multi-stream mode needs of the Kinesis client
// beyond KinesisAPI, to learn each stream's account and creation time;
// *kinesis.Client satisfies it.
type StreamDescriber interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// WithStreams follows several streams with one lease table (the KCL's
// multi-stream mode) instead of the one stream of WithStream; exactly one
// of WithStream, WithStreams and WithStreamTracker is required. Lease keys
// are account:streamName:creationEpoch:shardId, the account and creation
// time coming from DescribeStreamSummary when Run starts (the client must
// implement StreamDescriber). Records and InitializeInput carry the
// stream's name. With WithFanOut, the stream consumer is registered on each
// stream.
func WithStreams(names ...string) Option {
	return optionFunc(func(c *config) { c.streams = append(c.streams, names...) })
}

// StreamTracker lists the streams to follow in multi-stream mode (the
// KCL's MultiStreamTracker.streamConfigList). It is called when Run starts
// and before every shard sync; it must be safe to call from the worker's
// goroutine while Run runs.
type StreamTracker func(ctx context.Context) ([]string, error)

// WithStreamTracker is WithStreams with a list that may change while the
// consumer runs: before every shard sync (WithShardSyncInterval) the worker
// asks t, starts following the streams that appeared (describing each
// once) and stops following those that went, letting their shards finish
// their batch, checkpoint and release their leases, which it then no longer
// takes. Their leases stay in the table, as with the KCL's
// NoLeaseDeletionStrategy. A failing t keeps the current list; at start it
// fails Run.
func WithStreamTracker(t StreamTracker) Option {
	return optionFunc(func(c *config) { c.tracker = t })
}

// WithFormerStreamsLeaseDeletion deletes, in multi-stream mode, the leases
// of streams no longer followed once wait has passed since the worker first
// found them (the KCL's AutoDetectionAndDeferredDeletionStrategy): any
// multi-stream lease in the table whose stream is not in the list counts.
// The wait lets every worker of the application move to the new list
// first: a stream deleted this way and followed again starts from its
// initial position. Default 0: leases of former streams are kept (the KCL's
// NoLeaseDeletionStrategy).
func WithFormerStreamsLeaseDeletion(wait time.Duration) Option {
	return optionFunc(func(c *config) { c.formerWait = wait })
}

// WithStreamInitialPosition sets where the shards of one stream start when
// they have no checkpoint yet, over WithInitialPosition (the KCL's
// StreamConfig.initialPositionInStreamExtended). May be given for several
// streams.
func WithStreamInitialPosition(stream string, p InitialPosition) Option {
	return optionFunc(func(c *config) {
		if c.initialBy == nil {
			c.initialBy = map[string]InitialPosition{}
		}
		c.initialBy[stream] = p
	})
}

// initialFor returns where a shard of stream without a checkpoint starts.
func (c *config) initialFor(stream string) InitialPosition {
	if p, ok := c.initialBy[stream]; ok {
		return p
	}
	return c.initial
}

// followed is one stream the worker follows: its name and the prefix of its
// lease keys ("" for the one stream of single-stream mode, whose keys are
// bare shard ids).
type followed struct {
	name   string
	prefix string
}

func (c *config) validateStreams(bad func(string, ...any)) {
	modes := 0
	for _, set := range []bool{c.stream != "", len(c.streams) > 0, c.tracker != nil} {
		if set {
			modes++
		}
	}
	switch {
	case modes == 0:
		bad("no stream: one of WithStream, WithStreams and WithStreamTracker is required")
	case modes > 1:
		bad("more than one of WithStream(%q), WithStreams and WithStreamTracker: use one", c.stream)
	}
	for s, p := range c.initialBy {
		if p.cp.IsZero() {
			bad("initial position of stream %q is not set: use Latest, TrimHorizon or AtTimestamp", s)
		}
	}
	if c.stream != "" {
		if c.formerWait > 0 {
			bad("WithFormerStreamsLeaseDeletion needs multi-stream mode (WithStreams or WithStreamTracker)")
		}
		return
	}
	if err := checkStreamNames(c.streams); err != nil {
		bad("WithStreams: %v", err)
	}
	if _, ok := c.kinesis.(StreamDescriber); c.kinesis != nil && !ok {
		bad("multi-stream mode: the Kinesis client (%T) does not implement StreamDescriber", c.kinesis)
	}
}

// checkStreamNames rejects an empty name, one with ':' (it could not be
// told apart in a lease key) and a name listed twice.
func checkStreamNames(names []string) error {
	seen := map[string]bool{}
	for _, s := range names {
		switch {
		case s == "" || strings.Contains(s, ":"):
			return fmt.Errorf("stream name %q: want a non-empty name without ':'", s)
		case seen[s]:
			return fmt.Errorf("stream %q named twice", s)
		}
		seen[s] = true
	}
	return nil
}

// resolveStreams returns the streams to follow when Run starts: the one
// stream, or each of WithStreams or of the tracker's list with its lease
// key prefix.
func (c *config) resolveStreams(ctx context.Context) ([]followed, error) {
	names := c.streams
	switch {
	case c.stream != "":
		return []followed{{name: c.stream}}, nil
	case c.tracker != nil:
		var err error
		if names, err = c.tracker(ctx); err != nil {
			return nil, fmt.Errorf("consumer: stream tracker: %w", err)
		}
		if err := checkStreamNames(names); err != nil {
			return nil, fmt.Errorf("consumer: stream tracker: %w", err)
		}
	}
	out := make([]followed, 0, len(names))
	for _, name := range names {
		f, err := c.describeStream(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// describeStream builds a stream's lease key prefix from the KCL's stream
// identifier: the account of the stream's ARN and its creation time in
// seconds, from DescribeStreamSummary.
func (c *config) describeStream(ctx context.Context, name string) (followed, error) {
	sum, err := c.kinesis.(StreamDescriber).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		return followed{}, fmt.Errorf("consumer: describing stream %s: %w", name, err)
	}
	desc := sum.StreamDescriptionSummary
	if desc == nil || desc.StreamCreationTimestamp == nil {
		return followed{}, fmt.Errorf("consumer: describing stream %s: no creation time in the answer", name)
	}
	_, account, _, err := kds.ParseStreamARN(aws.ToString(desc.StreamARN))
	if err != nil {
		return followed{}, fmt.Errorf("consumer: describing stream %s: %w", name, err)
	}
	id := lease.StreamIdentifier{AccountID: account, StreamName: name, CreationEpoch: desc.StreamCreationTimestamp.Unix()}
	if _, err := lease.ParseStreamIdentifier(id.String()); err != nil {
		return followed{}, fmt.Errorf("consumer: stream %s: %w", name, err)
	}
	return followed{name: name, prefix: id.String() + ":"}, nil
}

// trackStreams brings the followed streams up to date with the tracker's
// list, and asks the shards of streams no longer followed to stop (they
// checkpoint and release their leases).
func (w *worker) trackStreams(ctx context.Context) {
	names, err := w.cfg.tracker(ctx)
	if err == nil {
		err = checkStreamNames(names)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("stream tracker failed; following the same streams", "err", err)
		}
		return
	}
	cur := make(map[string]followed, len(w.streams))
	for _, f := range w.streams {
		cur[f.name] = f
	}
	next := make([]followed, 0, len(names))
	for _, name := range names {
		f, ok := cur[name]
		if !ok {
			opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
			f, err = w.cfg.describeStream(opCtx, name)
			cancel()
			if err != nil {
				w.log.Warn("cannot follow a new stream yet", "stream", name, "err", err)
				continue
			}
			w.log.Info("following stream", "stream", name)
		}
		delete(cur, name)
		next = append(next, f)
	}
	w.setStreams(next)
	for name := range cur {
		w.log.Info("no longer following stream", "stream", name)
	}
	for _, s := range w.held() {
		if _, ok := w.streamOf(s.key); !ok {
			s.requestShutdown()
		}
	}
}

// deleteFormerStreams deletes the leases of streams not followed for
// longer than the former-streams wait (WithFormerStreamsLeaseDeletion),
// given every lease of the table.
func (w *worker) deleteFormerStreams(ctx context.Context, leases []lease.Lease) {
	now := time.Now()
	byStream := map[string][]string{}
	for _, l := range leases {
		id, ok := l.StreamIdentifier()
		if !ok || w.follows(l) {
			continue
		}
		byStream[id.String()] = append(byStream[id.String()], l.LeaseKey)
	}
	for id := range w.former {
		if _, ok := byStream[id]; !ok {
			delete(w.former, id) // followed again, or its leases gone
		}
	}
	for id, keys := range byStream {
		since, ok := w.former[id]
		if !ok {
			w.former[id] = now
			continue
		}
		if now.Sub(since) < w.cfg.formerWait {
			continue
		}
		deleted := 0
		for _, key := range keys {
			opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
			err := w.cfg.store.DeleteLease(opCtx, key)
			cancel()
			if err != nil {
				w.log.Warn("deleting a former stream's lease failed", "stream", id, "lease", key, "err", err)
				continue
			}
			deleted++
		}
		w.log.Info("former stream's leases deleted", "stream", id, "leases", deleted)
	}
}

// setStreams makes fs the followed streams and indexes them by lease key
// prefix, so finding a lease's stream costs one map look-up whatever the
// number of streams.
func (w *worker) setStreams(fs []followed) {
	w.streams = fs
	w.byPrefix = make(map[string]followed, len(fs))
	for _, f := range fs {
		w.byPrefix[f.prefix] = f
	}
}

// streamOf returns the followed stream a lease key belongs to: in
// multi-stream mode the one whose prefix is all of the key up to the
// shard id (which holds no ':').
func (w *worker) streamOf(key string) (followed, bool) {
	if f, ok := w.byPrefix[""]; ok {
		return f, true // single-stream mode: every key is a shard id
	}
	i := strings.LastIndexByte(key, ':')
	if i < 0 {
		return followed{}, false
	}
	f, ok := w.byPrefix[key[:i+1]]
	return f, ok
}

// follows reports whether the worker processes l: in multi-stream mode only
// the leases of its streams.
func (w *worker) follows(l lease.Lease) bool {
	_, ok := w.streamOf(l.LeaseKey)
	return ok
}
