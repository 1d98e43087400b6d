package multilang

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
)

// The exception names a checkpoint answer carries, as the Java daemon
// writes them (the simple class name of what its checkpointer threw).
const (
	excShutdown     = "ShutdownException"
	excInvalidState = "InvalidStateException"
	excIllegalArg   = "IllegalArgumentException"
	excThrottling   = "ThrottlingException"
	excDependency   = "KinesisClientLibDependencyException"
)

// ErrProtocol reports a child that answered its first message with a
// well-formed message that is not the answer this protocol expects: it
// speaks another protocol or version. It stops the daemon, since every
// child would do the same.
var ErrProtocol = errors.New("multilang: the child does not speak the MultiLang protocol")

// processor is the consumer.RecordProcessor of one shard: it runs the
// executable and relays the lifecycle to it. When the child fails (exits,
// says something malformed, or is silent past the timeout) the call fails,
// so the consumer delivers the records again from the last checkpoint after
// a back-off, and the next call starts a new child from that checkpoint.
type processor struct {
	d       *daemon
	shardID string
	log     *slog.Logger
	child   *child // nil while no child runs
	// started counts the children started, so only the first handshake
	// can reveal a child speaking another protocol.
	started int
}

func (p *processor) Initialize(ctx context.Context, in consumer.InitializeInput) error {
	return p.start(ctx, in.Checkpoint)
}

func (p *processor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	if p.child == nil {
		if err := p.start(ctx, in.Checkpointer.Last()); err != nil {
			return err
		}
	}
	return p.exchange(ctx, ActionProcessRecords, encodeProcessRecords(in.Records, in.MillisBehindLatest), in.Checkpointer)
}

func (p *processor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	if p.child == nil {
		if err := p.start(ctx, in.Checkpointer.Last()); err != nil {
			return err
		}
	}
	if err := p.exchange(ctx, ActionShardEnded, encodeBare(ActionShardEnded), in.Checkpointer); err != nil {
		return err
	}
	p.stop()
	return nil
}

// ShutdownRequested gives the child its chance to checkpoint, then tells it
// the lease is going, as the KCL's shutdown task does after a requested
// shutdown.
func (p *processor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	if p.child == nil {
		return nil // the child failed and nothing was delivered since
	}
	if err := p.exchange(ctx, ActionShutdownRequested, encodeBare(ActionShutdownRequested), in.Checkpointer); err != nil {
		return err
	}
	p.LeaseLost(ctx, consumer.LeaseLostInput{ShardID: in.ShardID})
	return nil
}

// LeaseLost tells the child, within the shutdown grace (the shard's ctx has
// already ended), then ends it.
func (p *processor) LeaseLost(ctx context.Context, _ consumer.LeaseLostInput) {
	if p.child == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.d.grace())
	defer cancel()
	if err := p.exchange(ctx, ActionLeaseLost, encodeBare(ActionLeaseLost), nil); err != nil {
		p.log.Warn("child did not acknowledge leaseLost", "err", err)
		return
	}
	p.stop()
}

// start starts a child and initializes it at cp.
func (p *processor) start(ctx context.Context, cp lease.Checkpoint) error {
	c, err := p.d.startChild(p.log)
	if err != nil {
		return err
	}
	p.child = c
	p.started++
	p.log.Info("child started", "pid", c.proc.Pid(), "checkpoint", cp.String())
	if err := p.exchange(ctx, ActionInitialize, encodeInitialize(p.shardID, cp), nil); err != nil {
		return err
	}
	p.d.firstHandshake() // answered well: later children cannot be first
	return nil
}

// stop ends the child after its last message, giving it the shutdown
// grace to exit by itself.
func (p *processor) stop() { p.end(p.d.grace()) }

// end ends the child, killing it after grace.
func (p *processor) end(grace time.Duration) {
	if p.child != nil {
		p.d.endChild(p.child, grace)
		p.child = nil
	}
}

// fail kills the child after a failed exchange and returns the error for
// the consumer, which retries (from the last checkpoint, after a back-off);
// the next call starts a new child.
func (p *processor) fail(action string, err error) error {
	pid := p.child.proc.Pid()
	p.end(0) // it broke the protocol: no grace
	err = fmt.Errorf("multilang: shard %s: %s: %w", p.shardID, action, err)
	p.log.Error("child failed and was killed", "action", action, "pid", pid, "err", err)
	return err
}

// exchange sends one message and serves the child's checkpoint requests
// until it sends the status for action. ckp is nil for actions during
// which the child may not checkpoint.
func (p *processor) exchange(ctx context.Context, action string, msg []byte, ckp *consumer.Checkpointer) error {
	c, timeout := p.child, p.d.props.Timeout
	if err := c.send(ctx, msg, timeout); err != nil {
		return p.fail(action, err)
	}
	for {
		raw, err := c.next(ctx, timeout)
		if err != nil {
			return p.fail(action, err)
		}
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			continue // aws-kcl writes a blank line before each message
		}
		if line[0] != '{' {
			// Not JSON at all: a stray print. The Java daemon skips such lines too.
			p.log.Warn("skipping a line of child output that is not a message", "line", string(clipBytes(line)))
			continue
		}
		m, err := DecodeMessage(line)
		if err != nil {
			return p.fail(action, p.firstContact(action, err))
		}
		switch m.Action {
		case ActionCheckpoint:
			answer := encodeCheckpointResult(m, p.checkpoint(ctx, m, ckp))
			if err := c.send(ctx, answer, timeout); err != nil {
				return p.fail(action, err)
			}
		case ActionStatus:
			if m.ResponseFor != action {
				err := fmt.Errorf("%w: status for %q while waiting for the status of %q", ErrMalformed, m.ResponseFor, action)
				return p.fail(action, p.firstContact(action, err))
			}
			return nil
		}
	}
}

// firstContact turns a malformed answer to the first child's initialize
// into ErrProtocol, and stops the daemon with it.
func (p *processor) firstContact(action string, err error) error {
	if action != ActionInitialize || p.started != 1 || !p.d.firstHandshake() {
		return err
	}
	err = fmt.Errorf("%w: executable %q answered initialize with: %v", ErrProtocol, p.d.props.Executable[0], err)
	p.d.fatal(err)
	return err
}

// checkpoint performs a child's checkpoint request and returns the name of
// the exception the Java daemon would answer with, "" on success.
func (p *processor) checkpoint(ctx context.Context, m Message, ckp *consumer.Checkpointer) string {
	if ckp == nil {
		p.log.Warn("child asked for a checkpoint where none is allowed")
		return excInvalidState
	}
	var err error
	if m.SequenceNumber == nil {
		err = ckp.Checkpoint(ctx)
	} else {
		var sub int64 // checkpoint(sequenceNumber) is at sub-sequence 0, as in the KCL
		if m.SubSequenceNumber != nil {
			sub = *m.SubSequenceNumber
		}
		err = ckp.CheckpointAt(ctx, *m.SequenceNumber, sub)
	}
	if err != nil {
		p.log.Warn("checkpoint failed", "err", err)
	}
	return exceptionName(err)
}

// exceptionName maps a checkpoint error to the KCL exception a child's
// library expects.
func exceptionName(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, consumer.ErrLeaseLost), errors.Is(err, consumer.ErrShutdown),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return excShutdown
	case errors.Is(err, consumer.ErrInvalidCheckpoint):
		return excIllegalArg
	case errors.Is(err, lease.ErrThrottled):
		return excThrottling
	default:
		return excDependency
	}
}

func clipBytes(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
