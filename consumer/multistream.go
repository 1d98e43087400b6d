package consumer

import (
	"context"
	"fmt"
	"strings"

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
// of the two is required. Lease keys are account:streamName:creationEpoch:shardId,
// the account and creation time coming from DescribeStreamSummary when Run
// starts (the client must implement StreamDescriber). Records and
// InitializeInput carry the stream's name. Enhanced fan-out is not
// available in this mode yet.
func WithStreams(names ...string) Option {
	return optionFunc(func(c *config) { c.streams = append(c.streams, names...) })
}

// followed is one stream the worker follows: its name and the prefix of its
// lease keys ("" for the one stream of single-stream mode, whose keys are
// bare shard ids).
type followed struct {
	name   string
	prefix string
}

func (c *config) validateStreams(bad func(string, ...any)) {
	if len(c.streams) == 0 {
		if c.stream == "" {
			bad("no stream: WithStream or WithStreams is required")
		}
		return
	}
	if c.stream != "" {
		bad("both WithStream(%q) and WithStreams: use one", c.stream)
	}
	seen := map[string]bool{}
	for _, s := range c.streams {
		switch {
		case s == "" || strings.Contains(s, ":"):
			bad("stream name %q in WithStreams: want a non-empty name without ':'", s)
		case seen[s]:
			bad("stream %q named twice in WithStreams", s)
		}
		seen[s] = true
	}
	if _, ok := c.kinesis.(StreamDescriber); c.kinesis != nil && !ok {
		bad("WithStreams: the Kinesis client (%T) does not implement StreamDescriber", c.kinesis)
	}
	if c.fanOut != "" {
		bad("WithStreams with WithFanOut(%q): enhanced fan-out is not available in multi-stream mode yet", c.fanOut)
	}
}

// resolveStreams returns the streams to follow: the one stream, or each of
// WithStreams with its lease key prefix, the KCL's stream identifier built
// from DescribeStreamSummary (the account of the stream's ARN, the creation
// time in seconds).
func (c *config) resolveStreams(ctx context.Context) ([]followed, error) {
	if len(c.streams) == 0 {
		return []followed{{name: c.stream}}, nil
	}
	d := c.kinesis.(StreamDescriber)
	out := make([]followed, 0, len(c.streams))
	for _, name := range c.streams {
		sum, err := d.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("consumer: describing stream %s: %w", name, err)
		}
		desc := sum.StreamDescriptionSummary
		if desc == nil || desc.StreamCreationTimestamp == nil {
			return nil, fmt.Errorf("consumer: describing stream %s: no creation time in the answer", name)
		}
		_, account, _, err := kds.ParseStreamARN(aws.ToString(desc.StreamARN))
		if err != nil {
			return nil, fmt.Errorf("consumer: describing stream %s: %w", name, err)
		}
		id := lease.StreamIdentifier{AccountID: account, StreamName: name, CreationEpoch: desc.StreamCreationTimestamp.Unix()}
		if _, err := lease.ParseStreamIdentifier(id.String()); err != nil {
			return nil, fmt.Errorf("consumer: stream %s: %w", name, err)
		}
		out = append(out, followed{name: name, prefix: id.String() + ":"})
	}
	return out, nil
}

// streamOf returns the followed stream a lease key belongs to.
func (w *worker) streamOf(key string) (followed, bool) {
	for _, f := range w.streams {
		if f.prefix == "" || (strings.HasPrefix(key, f.prefix) && !strings.Contains(key[len(f.prefix):], ":")) {
			return f, true
		}
	}
	return followed{}, false
}

// follows reports whether the worker processes l: in multi-stream mode only
// the leases of its streams.
func (w *worker) follows(l lease.Lease) bool {
	_, ok := w.streamOf(l.LeaseKey)
	return ok
}
