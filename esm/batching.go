package esm

import (
	"context"
	"time"

	"github.com/ksp-project/ksp/consumer"
)

// The shard runner's reading side. Each read's records are filtered and
// added to pending; pending is run (invoked batch by batch) at once without
// a batching window, and with MaximumBatchingWindowInSeconds as Lambda
// does: once a full batch is gathered (BatchSize records, or the 6 MB
// payload), once the window has passed since the first pending record was
// read, or at shard end. The consumer calls ProcessIdle after each empty
// read (every PollInterval on a quiet shard; under fan-out after twice that
// without an event), so a window ends on the clock without new records;
// tumbling windows close the same way.

var _ consumer.IdleProcessor = (*shardRunner)(nil)

func (p *shardRunner) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) (err error) {
	defer p.rewindOnError(&err)
	p.useCheckpointer(in.Checkpointer)
	// Records at or before the last one read come again after the consumer
	// restarted its reader from the checkpoint; the pending ones are still
	// here. The records' data is only valid during this call, and a
	// timed-out invoke may still read its event after it: the records the
	// filters keep are copied (and sized once, for cutting batches).
	polled, filtered := 0, 0
	var last consumer.Record
	for _, rec := range in.Records {
		if p.read.SequenceNumber != "" && recordBefore(rec, p.read) {
			continue
		}
		polled++
		last = rec
		if len(p.r.s.filters) > 0 && !matchAny(p.r.s.filters, rec.Data) {
			filtered++
			continue
		}
		rec.Data = append([]byte(nil), rec.Data...)
		p.add(rec)
	}
	if polled == 0 {
		return p.tick(ctx, in.Checkpointer)
	}
	last.Data = nil // only its position is kept
	p.read = last
	hooks(p.r.s.Hooks).events(in.ShardID, polled, filtered)
	return p.flush(ctx, in.Checkpointer, false)
}

// add appends rec to the pending records, keeping the running size total.
func (p *shardRunner) add(rec consumer.Record) {
	if len(p.pending) == 0 {
		p.since = time.Now()
	}
	size := p.r.src.recordSize(rec)
	p.pending = append(p.pending, rec)
	p.sizes = append(p.sizes, size)
	p.bytes += size + 1 // and a comma
}

// ProcessIdle ends a batching window or a tumbling window whose time has
// come while no records arrive.
func (p *shardRunner) ProcessIdle(ctx context.Context, in consumer.ProcessIdleInput) (err error) {
	defer p.rewindOnError(&err)
	p.useCheckpointer(in.Checkpointer)
	return p.tick(ctx, in.Checkpointer)
}

// tick runs what the clock made due: the pending records once the batching
// window passed, then the open tumbling window's final invoke once its end
// passed (Lambda closes a window at its end, not when a later record comes).
func (p *shardRunner) tick(ctx context.Context, ckp *consumer.Checkpointer) error {
	if err := p.flush(ctx, ckp, false); err != nil {
		return err
	}
	if p.win != nil && len(p.pending) == 0 && !p.r.s.Now().Before(p.win.end) {
		return p.closeWindow(ctx, false, ckp)
	}
	return nil
}

// flush runs the pending records that are due: all of them when all is
// set, without a batching window, or once it passed; else the full batches
// gathered, the rest waiting for more.
func (p *shardRunner) flush(ctx context.Context, ckp *consumer.Checkpointer, all bool) error {
	due := len(p.pending)
	if window := time.Duration(p.r.s.MaximumBatchingWindowInSeconds) * time.Second; !all && window > 0 && time.Since(p.since) < window {
		due = 0
		if len(p.pending) >= p.r.s.BatchSize || eventEnvelope+p.bytes-1 > p.r.src.maxPayload {
			due = p.fullBatches()
		}
	}
	if due > 0 {
		if err := p.run(ctx, p.pending[:due], p.sizes[:due], ckp); err != nil {
			return err
		}
		for _, n := range p.sizes[:due] {
			p.bytes -= n + 1
		}
		// The rest (less than a batch; none without a batching window)
		// moves to new arrays, so the run records' data can be collected.
		p.pending = append([]consumer.Record(nil), p.pending[due:]...)
		p.sizes = append([]int(nil), p.sizes[due:]...)
		p.since = time.Now() // the rest starts a new window
	}
	if len(p.pending) > 0 || p.win != nil || p.r.s.TumblingWindowInSeconds > 0 || p.read.SequenceNumber == "" {
		return nil
	}
	if position(p.read).Compare(ckp.Last()) > 0 {
		// Records filtered out after the last one invoked: skip past them.
		// (With tumbling windows they are checkpointed when the next
		// window closes.)
		return ckp.CheckpointRecord(ctx, p.read)
	}
	return nil
}

// fullBatches returns how many pending records make whole batches.
func (p *shardRunner) fullBatches() int {
	n := 0
	for n < len(p.sizes) {
		rest := p.sizes[n:]
		k := p.r.src.cutBatch(rest, p.r.s.BatchSize)
		if k == len(rest) && k < p.r.s.BatchSize {
			break // fits with room to spare: wait for more
		}
		n += k
	}
	return n
}

// run runs records kept by the filters, in shard order, to their end.
// sizes[i] is recs[i]'s event JSON size.
func (p *shardRunner) run(ctx context.Context, recs []consumer.Record, sizes []int, ckp *consumer.Checkpointer) error {
	switch {
	case p.r.s.TumblingWindowInSeconds > 0:
		// The open window's records are checkpointed when it closes.
		return p.runWindows(ctx, recs, sizes, ckp)
	case p.r.s.ParallelizationFactor > 1:
		return p.r.runParallel(ctx, recs, sizes, ckp)
	}
	return p.r.runRecords(ctx, recs, sizes, nil, p.book, ckp.CheckpointRecord)
}

func (p *shardRunner) useCheckpointer(ckp *consumer.Checkpointer) {
	if p.book != nil {
		p.book.ckp = ckp
	}
}

// rewindOnError forgets what was read since the checkpoint when *err is
// set: the consumer then delivers again from the checkpoint (the open
// tumbling window's start, whose state begins again empty).
func (p *shardRunner) rewindOnError(err *error) {
	if *err == nil {
		return
	}
	p.win = nil
	p.pending, p.sizes, p.bytes, p.read = nil, nil, 0, consumer.Record{}
	p.book.rewind()
}
