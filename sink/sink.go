package sink

import (
	"context"
	"errors"
	"fmt"
)

// Sink receives messages. Send returns nil once the message is accepted
// (see the package guarantees).
type Sink interface {
	Send(ctx context.Context, m Message) error
	// MaxSize is the largest Body Send accepts, in bytes; 0 means no limit.
	MaxSize() int
}

// Message is what a sink delivers.
type Message struct {
	// Body is the message, normally one JSON document.
	Body []byte
	// Key groups messages that belong together (the Kinesis partition key;
	// sinks without such a notion ignore it). Callers use the source shard
	// id, so one shard's messages stay in order.
	Key string
}

// ErrTooLarge is returned by Send for a body over the sink's MaxSize.
var ErrTooLarge = errors.New("sink: message too large")

// Limits of the services, in bytes.
const (
	// MaxSQSMessage is the largest SQS message body (256 KiB).
	MaxSQSMessage = 256 << 10
	// MaxSNSMessage is the largest SNS message (256 KiB).
	MaxSNSMessage = 256 << 10
	// MaxKinesisRecord is a Kinesis record's default limit, data plus
	// partition key (1 MiB).
	MaxKinesisRecord = 1 << 20
)

// checkSize refuses a body over limit (0: no limit).
func checkSize(name string, m Message, limit int) error {
	if limit > 0 && len(m.Body) > limit {
		return fmt.Errorf("%w: %d bytes for %s, which takes at most %d", ErrTooLarge, len(m.Body), name, limit)
	}
	return nil
}

// Func adapts a function to a Sink without a size limit.
type Func func(ctx context.Context, m Message) error

// Send calls f.
func (f Func) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// MaxSize is 0: no limit.
func (f Func) MaxSize() int { return 0 }

// Limit returns s with its MaxSize lowered to n bytes (a queue configured
// with a smaller maximum message size, say); Send refuses larger bodies
// with ErrTooLarge.
func Limit(s Sink, n int) Sink { return limited{s, n} }

type limited struct {
	s Sink
	n int
}

func (l limited) MaxSize() int {
	if m := l.s.MaxSize(); m > 0 && m < l.n {
		return m
	}
	return l.n
}

func (l limited) Send(ctx context.Context, m Message) error {
	if err := checkSize("the limited sink", m, l.MaxSize()); err != nil {
		return err
	}
	return l.s.Send(ctx, m)
}
