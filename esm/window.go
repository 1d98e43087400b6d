package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/ksp-project/ksp/consumer"
)

// window is a shard's open tumbling window: its bounds, the state the
// handler returned last, and the records handled in it so far, which are
// checkpointed only when it closes, so a restart replays the whole window
// with its state from the start.
type window struct {
	start, end  time.Time
	shardID     string
	state       map[string]string
	first, last consumer.Record // of the records read in the window
	n           int             // records read in the window
}

// windowStart is the start of the window holding t: windows are aligned on
// multiples of their length since the epoch.
func windowStart(t time.Time, length time.Duration) time.Time {
	return t.Truncate(length)
}

// event builds an invoke's event; without a window it is a plain
// KinesisEvent.
func (w *window) event(src source, recs []consumer.Record) events.KinesisTimeWindowEvent {
	ev := events.KinesisTimeWindowEvent{KinesisEvent: src.event(recs)}
	if w != nil {
		ev.TimeWindowProperties = events.TimeWindowProperties{
			Window:         events.Window{Start: events.RFC3339EpochTime{Time: w.start}, End: events.RFC3339EpochTime{Time: w.end}},
			State:          w.state,
			ShardID:        w.shardID,
			EventSourceARN: src.streamARN,
		}
	}
	return ev
}

func (w *window) update(state map[string]string) {
	if w != nil {
		w.state = state
	}
}

// commit notes that the window's records up to rec are handled (or given
// up); they are checkpointed when the window closes.
func (w *window) commit(context.Context, consumer.Record) error { return nil }

// runWindows runs recs window by window: batches never span two windows,
// and a record of a later window first closes the open one.
// After an error the consumer delivers again from the last checkpoint, the
// open window's start: it begins again with empty state (rewindOnError).
func (p *shardRunner) runWindows(ctx context.Context, recs []consumer.Record, sizes []int, ckp *consumer.Checkpointer) error {
	length := time.Duration(p.r.s.TumblingWindowInSeconds) * time.Second
	for len(recs) > 0 {
		start := windowStart(recs[0].ApproximateArrivalTimestamp, length)
		if p.win != nil && start.After(p.win.start) {
			if err := p.closeWindow(ctx, false, ckp); err != nil {
				return err
			}
		}
		if p.win == nil {
			p.win = &window{start: start, end: start.Add(length), shardID: recs[0].ShardID, first: recs[0]}
		}
		k := 1
		for k < len(recs) && !windowStart(recs[k].ApproximateArrivalTimestamp, length).After(p.win.start) {
			k++
		}
		// One batch at a time, to check the state's size after each.
		n := p.r.src.cutBatch(sizes[:k], p.r.s.BatchSize)
		if err := p.r.runBatch(ctx, recs[:n], p.win, nil, p.win.commit); err != nil {
			return err
		}
		p.win.last = recs[n-1]
		p.win.n += n
		recs, sizes = recs[n:], sizes[n:]
		if p.win.stateSize() > MaxWindowStateBytes {
			// Lambda terminates the window early; its later records
			// start a window of the same bounds with empty state.
			if err := p.closeWindow(ctx, true, ckp); err != nil {
				return err
			}
		}
	}
	return nil
}

// MaxWindowStateBytes is the most state a tumbling window keeps (1 MB per
// shard): a handler returning more has its window terminated early.
const MaxWindowStateBytes = 1 << 20

// stateSize is the size of the window's state as JSON.
func (w *window) stateSize() int {
	b, _ := json.Marshal(w.state) // a map of strings always encodes
	return len(b)
}

// closeWindow makes the window's final invoke (no records,
// isFinalInvokeForWindow; isWindowTerminatedEarly at shard end or when the
// state grew past MaxWindowStateBytes), retried
// like any invoke, then checkpoints the window's last record.
func (p *shardRunner) closeWindow(ctx context.Context, early bool, ckp *consumer.Checkpointer) error {
	w := p.win
	if w.n == 0 {
		p.win = nil
		return nil
	}
	failures, unreached := 0, 0
	for {
		if p.r.stopping.Err() != nil {
			return errStopping
		}
		ev := w.event(p.r.src, nil)
		ev.Records = []events.KinesisEventRecord{}
		ev.IsFinalInvokeForWindow = true
		ev.IsWindowTerminatedEarly = early
		began := time.Now()
		_, err := p.r.inv.invoke(ctx, ev)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ie := (*InvokeError)(nil); errors.As(err, &ie) {
			unreached++
			if err := p.r.notReached(ctx, w.shardID, 0, failures, ie, unreached); err != nil {
				return err
			}
			continue
		}
		unreached = 0
		hooks(p.r.s.Hooks).invoke(w.shardID, 0, time.Since(began), err)
		if err == nil {
			break
		}
		failures++
		p.r.log.Info("final window invoke failed", "shard_id", w.shardID, "failures", failures, "err", err)
		if p.r.s.maxRetries >= 0 && failures > p.r.s.maxRetries {
			a := attempt{invokes: failures, failures: failures, fnErr: true}
			if err := p.r.giveUp(ctx, RetryAttemptsExhausted, w.first, w.last, w.n, a, func(context.Context, consumer.Record) error { return nil }); err != nil {
				return err
			}
			break
		}
		if err := p.r.pause(ctx, p.r.backoff(failures)); err != nil {
			return err
		}
	}
	if err := ckp.CheckpointRecord(ctx, w.last); err != nil {
		return fmt.Errorf("esm: checkpointing window %s of %s: %w", w.start.Format(time.RFC3339), w.shardID, err)
	}
	p.win = nil
	return nil
}
