package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/breaker"
	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/sink"
)

// errStopping ends a processing call that was waiting (for a breaker or a
// dead-letter sink) because the shard must stop: nothing was checkpointed
// past what was processed.
var errStopping = errors.New("consumer: shard stopping")

// maxLastError bounds the error text a dead-letter entry carries.
const maxLastError = 4096

// failureConfig holds the options for failing handlers.
type failureConfig struct {
	deadLetter sink.Sink
	attempts   int
	breaker    *breaker.Breaker
}

// WithDeadLetter sends what the handler keeps failing on to s instead of
// retrying it forever: after attempts failed deliveries of the same
// position, the records are sent to s, one DeadLetter entry (JSON) each,
// and only once s accepted all of them is the last one checkpointed; the
// shard then moves on. With a Handler the unit is the batch (a whole batch
// failing attempts times is dead-lettered); with a RecordHandler, or a
// Handler returning *PartialBatchError, it is the one record the handler
// failed on, and the rest of the batch is delivered again at once. A sink
// that fails holds the shard (retried with back-off, logged, told to
// HookDeadLetter), never skips it. Attempts are counted per worker: a
// shard taken over starts counting again. Needs WithHandler or
// WithRecordHandler (a RecordProcessor dead-letters itself, through a
// sink of its own). attempts ≥ 1. Default: none, failing batches are
// retried until they succeed.
func WithDeadLetter(s sink.Sink, attempts int) Option {
	return optionFunc(func(c *config) { c.failure.deadLetter, c.failure.attempts = s, attempts })
}

// WithBreaker runs every handler call through b, the breaker guarding the
// handler's downstream: each call's error (nil or not) is its outcome.
// While b is open the shard pauses before its next call: the handler is not
// called, no checkpoint moves, the lease keeps being renewed, and
// HookShardLag is told the age of the oldest record waiting (so lag
// reported grows); when b lets probes through, the waiting batch is the
// probe. Pauses are not failed attempts for WithDeadLetter, but calls that
// fail are, probes included: choose attempts × b's open time longer than
// the outages to ride out. Share one breaker between the shards (and
// workers of a process) calling the same downstream. A handler error
// wrapping breaker.ErrOpen (the handler used a breaker itself) is never a
// dead-letter attempt, with or without this option. Needs WithHandler or
// WithRecordHandler. Default none.
func WithBreaker(b *breaker.Breaker) Option {
	return optionFunc(func(c *config) { c.failure.breaker = b })
}

// RecordHandler processes one record; see WithRecordHandler.
type RecordHandler func(ctx context.Context, r Record) error

// WithRecordHandler processes records one at a time, in order: the
// consumer calls h for each record of a batch and checkpoints as a Handler
// does. When h fails (error or panic) on a record, the records before it
// are checkpointed and it is delivered again, with what follows, after a
// back-off; with WithDeadLetter it alone is dead-lettered after the
// attempts. It replaces WithHandler (the last of the two wins).
func WithRecordHandler(h RecordHandler) Option {
	return optionFunc(func(c *config) { c.handler = perRecord(h) })
}

// perRecord runs h over a batch, reporting a failure as a
// *PartialBatchError naming the last record processed.
func perRecord(h RecordHandler) Handler {
	return func(ctx context.Context, recs []Record) error {
		for i, r := range recs {
			if err := callRecord(ctx, h, r); err != nil {
				if i == 0 {
					return &PartialBatchError{Err: err}
				}
				return &PartialBatchError{Processed: recs[i-1], Err: err}
			}
		}
		return nil
	}
}

func callRecord(ctx context.Context, h RecordHandler, r Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return h(ctx, r)
}

func (f *failureConfig) enabled() bool { return f.deadLetter != nil || f.breaker != nil }

func (f *failureConfig) validate(c *config, bad func(string, ...any)) {
	if f.deadLetter != nil && f.attempts < 1 {
		bad("dead-letter attempts %d is below 1", f.attempts)
	}
	if f.deadLetter == nil && f.attempts != 0 {
		bad("dead-letter attempts %d without a sink", f.attempts)
	}
	if f.enabled() && c.handler == nil {
		bad("WithDeadLetter and WithBreaker need WithHandler or WithRecordHandler")
	}
}

// DeadLetter is the entry sent to the dead-letter sink for each record
// given up, as JSON with the field names shown.
type DeadLetter struct {
	Stream            string `json:"stream"`
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
	PartitionKey      string `json:"partitionKey"`
	ExplicitHashKey   string `json:"explicitHashKey,omitempty"`
	// ApproximateArrivalTimestamp is when Kinesis accepted the record.
	ApproximateArrivalTimestamp time.Time `json:"approximateArrivalTimestamp"`
	// Attempts is how many deliveries of the unit failed.
	Attempts int `json:"attempts"`
	// LastError is the last failure's text (at most 4 KiB).
	LastError string `json:"lastError"`
	// Unit is "batch" or "record": what was given up together, and
	// UnitSize how many records that was.
	Unit     string `json:"unit"`
	UnitSize int    `json:"unitSize"`
	// Data is the record's data (base64 in JSON). It is absent when the
	// entry with it would exceed the sink's MaxSize: DataPointer is set
	// instead.
	Data     []byte `json:"data,omitempty"`
	DataSize int    `json:"dataSize"`
	// DataPointer, when set, locates the data in the stream, as
	// kinesis://STREAM/SHARD_ID/SEQUENCE_NUMBER/SUB_SEQUENCE_NUMBER: read it
	// with GetShardIterator AT_SEQUENCE_NUMBER and GetRecords (then
	// deaggregate and take the sub-sequence number) while the stream
	// retains it (24 hours by default).
	DataPointer string `json:"dataPointer,omitempty"`
	// Worker is the worker that gave the record up, and DeadLetteredAt
	// when.
	Worker         string    `json:"worker"`
	DeadLetteredAt time.Time `json:"deadLetteredAt"`
}

// HookDeadLetter is told about dead-lettering: once per failed send to the
// sink (records 1, err set; the shard waits and retries), and once per unit
// accepted (records its size, err nil), before its checkpoint.
type HookDeadLetter interface {
	OnDeadLetter(shardID string, records int, err error)
}

func (hs hooks) deadLetter(shardID string, n int, err error) {
	for _, h := range hs {
		if h, ok := h.(HookDeadLetter); ok {
			h.OnDeadLetter(shardID, n, err)
		}
	}
}

// newProcessor returns the processor for a shard: the user's, or the
// handler run through the breaker and dead-letter options.
func (w *worker) newProcessor(s *shardLease) RecordProcessor {
	if w.cfg.handler == nil || !w.cfg.failure.enabled() {
		return w.cfg.processor(s.shardID)
	}
	return &guardedHandler{w: w, s: s, h: w.cfg.handler, f: &w.cfg.failure}
}

// guardedHandler runs a Handler with a breaker and a dead-letter sink.
type guardedHandler struct {
	handlerProcessor
	w *worker
	s *shardLease
	h Handler
	f *failureConfig

	// failing is the position that failed last, and fails how many
	// deliveries of it failed in a row.
	failing lease.Checkpoint
	fails   int
}

func (p *guardedHandler) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	recs := in.Records
	for len(recs) > 0 {
		var bc *breaker.Call
		if p.f.breaker != nil {
			c, err := p.admit(recs)
			if err != nil {
				return err
			}
			bc = c
		}
		err := call(p.s.log, func() error { return p.h(ctx, recs) })
		if bc != nil {
			bc.Done(err)
		}
		if err == nil {
			p.fails = 0
			return in.Checkpointer.CheckpointRecord(ctx, recs[len(recs)-1])
		}
		unit, rest, single, cerr := p.failedUnit(ctx, in.Checkpointer, recs, err)
		if cerr != nil {
			return cerr
		}
		if len(unit) == 0 || p.f.deadLetter == nil || errors.Is(err, breaker.ErrOpen) {
			return err // delivered again after a back-off
		}
		pos := position(unit[0])
		if p.fails == 0 || pos.Compare(p.failing) != 0 {
			p.failing, p.fails = pos, 0
		}
		if p.fails++; p.fails < p.f.attempts {
			return err
		}
		p.w.cfg.hooks.processError(p.s.shardID, err)
		cause := err
		if partial := (*PartialBatchError)(nil); single && errors.As(err, &partial) && partial.Err != nil {
			cause = partial.Err // the record's own failure, without the batch's wrapping
		}
		if err := p.deadLetter(ctx, unit, cause, single); err != nil {
			return err
		}
		if err := in.Checkpointer.CheckpointRecord(ctx, unit[len(unit)-1]); err != nil {
			return err
		}
		p.fails = 0
		recs = rest
	}
	return nil
}

// failedUnit checkpoints what a failed call processed and returns what
// failed: the one record after the processed ones for a *PartialBatchError
// (and the records after it, perRecord true), else the whole batch.
func (p *guardedHandler) failedUnit(ctx context.Context, ckp *Checkpointer, recs []Record, err error) (unit, rest []Record, perRecord bool, cerr error) {
	var partial *PartialBatchError
	if !errors.As(err, &partial) {
		return recs, nil, false, nil
	}
	i := 0
	if partial.Processed.SequenceNumber != "" {
		if cerr := ckp.CheckpointRecord(ctx, partial.Processed); cerr != nil {
			return nil, nil, false, errors.Join(err, cerr)
		}
		i = indexOf(recs, position(partial.Processed)) + 1
	}
	if i >= len(recs) {
		return nil, nil, true, nil // everything was processed after all
	}
	return recs[i : i+1], recs[i+1:], true, nil
}

func indexOf(recs []Record, cp lease.Checkpoint) int {
	for i, r := range recs {
		if position(r).Compare(cp) == 0 {
			return i
		}
	}
	return len(recs) // checkpointed, so it lies past the batch
}

func position(r Record) lease.Checkpoint {
	return lease.Checkpoint{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
}

// admit waits until the breaker admits a call, pausing the shard while it
// is open.
func (p *guardedHandler) admit(recs []Record) (*breaker.Call, error) {
	for waits := 0; ; waits++ {
		c, err := p.f.breaker.Allow()
		if err == nil {
			if waits > 0 {
				p.s.log.Info("downstream breaker lets a probe through; shard resumes", "breaker", p.f.breaker.Name())
			}
			return c, nil
		}
		if waits == 0 {
			p.s.log.Warn("downstream breaker open; shard paused", "breaker", p.f.breaker.Name(), "err", err)
		}
		p.w.cfg.hooks.shardLag(p.s.shardID, time.Since(recs[0].ApproximateArrivalTimestamp).Milliseconds())
		d := 10 * time.Millisecond
		var oe *breaker.OpenError
		if errors.As(err, &oe) {
			d = min(max(d, oe.RetryAfter), time.Second) // report lag at least every second
		}
		if _, stop := p.s.pause(d); stop {
			return nil, errStopping
		}
	}
}

// deadLetter sends one entry per record of unit and returns once the sink
// accepted them all, or errStopping when the shard must stop first.
func (p *guardedHandler) deadLetter(ctx context.Context, unit []Record, cause error, recordLevel bool) error {
	kind := "batch"
	if recordLevel {
		kind = "record"
	}
	last := cause.Error()
	if len(last) > maxLastError {
		last = last[:maxLastError]
	}
	now := time.Now().UTC()
	p.s.log.Warn("giving up records to the dead-letter sink", "unit", kind, "records", len(unit), "attempts", p.fails, "err", cause)
	for _, r := range unit {
		e := DeadLetter{
			Stream: p.w.cfg.stream, ShardID: p.s.shardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
			PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, ApproximateArrivalTimestamp: r.ApproximateArrivalTimestamp,
			Attempts: p.fails, LastError: last, Unit: kind, UnitSize: len(unit), Data: r.Data, DataSize: len(r.Data),
			Worker: p.w.cfg.workerID, DeadLetteredAt: now,
		}
		if err := p.send(ctx, e); err != nil {
			return err
		}
	}
	p.w.cfg.hooks.deadLetter(p.s.shardID, len(unit), nil)
	return nil
}

// send delivers one entry, retrying with back-off until the sink accepts
// it; an entry over the sink's size limit goes without its data.
func (p *guardedHandler) send(ctx context.Context, e DeadLetter) error {
	s := p.f.deadLetter
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("consumer: encoding dead-letter entry: %w", err)
	}
	pointer := func() {
		e.Data = nil
		e.DataPointer = fmt.Sprintf("kinesis://%s/%s/%s/%d", e.Stream, e.ShardID, e.SequenceNumber, e.SubSequenceNumber)
		body, _ = json.Marshal(e) // encoded once already: cannot fail
	}
	if limit := s.MaxSize(); limit > 0 && len(body) > limit {
		pointer()
	}
	for fails := 0; ; fails++ {
		err := s.Send(ctx, sink.Message{Body: body, Key: e.ShardID})
		if err == nil {
			return nil
		}
		p.w.cfg.hooks.deadLetter(e.ShardID, 1, err)
		if errors.Is(err, sink.ErrTooLarge) && e.DataPointer == "" {
			pointer()
			continue
		}
		p.s.log.Error("dead-letter sink failed; the shard waits for it", "sequence", e.SequenceNumber, "err", err)
		if _, stop := p.s.pause(backoff.Delay(100*time.Millisecond, p.w.cfg.retryMax, fails)); stop {
			return errStopping
		}
	}
}
