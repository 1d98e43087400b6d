package esm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/backoff"
)

// maxRetryDelay caps the back-off between retries of one batch.
const maxRetryDelay = 30 * time.Second

// Run runs the event source mapping cfg with handler h until ctx ends, then
// shuts down gracefully (see package consumer): it returns a
// *ValidationError for a mapping Lambda would refuse, ErrUnsupported for a
// setting ksp does not implement yet, and otherwise what consumer.Run
// returns. It returns only once every invoke it started has returned.
func Run[H Handler](ctx context.Context, cfg Config, h H) error {
	s, err := cfg.validate()
	if err != nil {
		return err
	}
	if err := s.unsupported(); err != nil {
		return err
	}
	out, err := s.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.Stream)})
	if err != nil {
		return fmt.Errorf("esm: describing stream %s: %w", s.Stream, err)
	}
	src, err := newSource(aws.ToString(out.StreamDescriptionSummary.StreamARN), cfg)
	if err != nil {
		return err
	}
	var running sync.WaitGroup
	defer running.Wait()
	r := &runner{s: s, src: src, inv: newInvoker(h, s.FunctionTimeout, &running), log: s.Logger, stopping: ctx}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("stream", s.Stream)

	pos := consumer.Latest()
	switch s.StartingPosition {
	case TrimHorizon:
		pos = consumer.TrimHorizon()
	case AtTimestamp:
		pos = consumer.AtTimestamp(s.StartingPositionTimestamp)
	}
	opts := []consumer.Option{
		consumer.WithStream(s.Stream),
		consumer.WithKinesis(s.Kinesis),
		consumer.WithLeaseStore(s.LeaseStore),
		consumer.WithInitialPosition(pos),
		consumer.WithDeaggregation(s.Deaggregate),
		consumer.WithIdleTime(s.PollInterval),
		consumer.WithProcessor(func(shardID string) consumer.RecordProcessor {
			p := &shardRunner{r: r}
			if s.ParallelizationFactor == 1 && s.TumblingWindowInSeconds == 0 {
				p.book = &retryBook{log: r.log.With("shard_id", shardID)}
			}
			return p
		}),
	}
	c, err := consumer.New(append(opts, s.ConsumerOptions...)...)
	if err != nil {
		return fmt.Errorf("esm: %w", err)
	}
	return c.Run(ctx)
}

// runner holds what every shard of one mapping shares.
type runner struct {
	s   settings
	src source
	inv invoker
	log *slog.Logger
	// stopping is Run's context: once it ends, the shards finish the
	// invoke in progress but start no other (the shard's own context lives
	// on through the graceful shutdown).
	stopping context.Context
}

// errStopping ends a shard's batch between two invokes when Run stops.
var errStopping = errors.New("esm: stopping")

// shardRunner is the consumer's processor for one shard: it cuts each
// batch the consumer reads into invokes and runs each invoke to its end
// (success, or given up to the on-failure destination) before the next, so
// the shard's checkpoint never passes a record that was not handled or
// delivered.
type shardRunner struct {
	r    *runner
	win  *window    // the open tumbling window, nil without one
	book *retryBook // nil with ParallelizationFactor above 1 or tumbling windows

	// The batching window (see batching.go).
	pending []consumer.Record // read and kept by the filters, not yet run
	sizes   []int             // sizes[i]: pending[i]'s event JSON size
	bytes   int               // the sum of sizes, plus one comma each
	since   time.Time         // when the first of pending was read
	read    consumer.Record   // the last record read; zero: none since the checkpoint
}

// Initialize starts from the checkpoint, so with no open window, and takes
// up the retry state kept with the lease.
func (p *shardRunner) Initialize(_ context.Context, in consumer.InitializeInput) error {
	p.win = nil
	if p.book != nil {
		p.book.load(in.PendingCheckpointState)
	}
	return nil
}

// commitFunc records that every record up to rec (of the records it is
// given) is handled or given up.
type commitFunc func(ctx context.Context, rec consumer.Record) error

// runRecords cuts recs (sizes[i]: recs[i]'s event JSON size) into batches
// and runs each to its end, in order. book (nil: none) keeps the retry
// state of a failing batch with the lease.
func (r *runner) runRecords(ctx context.Context, recs []consumer.Record, sizes []int, w *window, book *retryBook, commit commitFunc) error {
	for len(recs) > 0 {
		n := r.src.cutBatch(sizes, r.s.BatchSize)
		if err := r.runBatch(ctx, recs[:n], w, book, commit); err != nil {
			return err
		}
		recs, sizes = recs[n:], sizes[n:]
	}
	return nil
}

func (p *shardRunner) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) (err error) {
	defer p.rewindOnError(&err)
	p.useCheckpointer(in.Checkpointer)
	if err := p.flush(ctx, in.Checkpointer, true); err != nil {
		return err
	}
	if p.win != nil {
		if err := p.closeWindow(ctx, true, in.Checkpointer); err != nil {
			return err
		}
	}
	return in.Checkpointer.Checkpoint(ctx)
}

// ShutdownRequested has nothing to do: every record handled or given up is
// already checkpointed; records gathered for a batch and not yet invoked
// are read again by the shard's next owner.
func (p *shardRunner) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	return nil
}

func (p *shardRunner) LeaseLost(context.Context, consumer.LeaseLostInput) {}

// attempt is a run of records being invoked until it succeeds or is given
// up. Bisected halves inherit their parent's counts: splits spend no retry.
type attempt struct {
	recs     []consumer.Record
	invokes  int  // invokes that included these records
	failures int  // failed invokes (function errors and partial failures)
	fnErr    bool // the last failure was a function error
}

// runBatch runs one batch of the shard to its end. It returns only ctx's
// error or a checkpoint's: the consumer then starts again from the last
// checkpoint.
func (r *runner) runBatch(ctx context.Context, batch []consumer.Record, w *window, book *retryBook, commit commitFunc) error {
	queue := book.resume(batch)
	unreached := 0 // consecutive invokes that did not reach the function
	for len(queue) > 0 {
		if r.stopping.Err() != nil {
			return errStopping // not checkpointed: the next run starts here
		}
		a := &queue[0]
		if k := r.expired(a.recs); k > 0 {
			if err := r.giveUp(ctx, RecordAgeExceeded, a.recs[0], a.recs[k-1], k, *a, commit); err != nil {
				return err
			}
			if a.recs = a.recs[k:]; len(a.recs) == 0 {
				queue = queue[1:]
			}
			book.save(ctx, queue)
			continue
		}
		shard := a.recs[0].ShardID
		hs := hooks(r.s.Hooks)
		hs.iteratorAge(shard, r.s.Now().Sub(a.recs[len(a.recs)-1].ApproximateArrivalTimestamp))
		began := time.Now()
		resp, err := r.inv.invoke(ctx, w.event(r.src, a.recs))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ie := (*InvokeError)(nil); errors.As(err, &ie) {
			// Throttled, or the service failed: not the function's error.
			unreached++
			if err := r.notReached(ctx, shard, len(a.recs), a.failures, ie, unreached); err != nil {
				return err
			}
			continue
		}
		unreached = 0
		hs.invoke(shard, len(a.recs), time.Since(began), err)
		a.invokes++
		failedAt, fnErr := -1, err != nil
		if err == nil && r.s.reportItem {
			var ok bool
			if failedAt, ok = lowestFailure(resp, a.recs); !ok {
				fnErr = true
				err = fmt.Errorf("%w: invalid partial batch response %+v", errFunction, resp.BatchItemFailures)
			}
		}
		if !fnErr {
			w.update(resp.State) // the handler's state after this invoke
		}
		switch {
		case !fnErr && failedAt < 0:
			r.log.Debug("invoke succeeded", "shard_id", shard, "records", len(a.recs))
			last := a.recs[len(a.recs)-1]
			if err := commit(ctx, last); err != nil {
				return err
			}
			hs.outcome(Outcome{ShardID: shard, Records: len(a.recs), Result: ResultSucceeded, Settled: len(a.recs), Retries: a.failures, Checkpoint: last.SequenceNumber})
			queue = queue[1:]
			book.save(ctx, queue) // the checkpoint removed it
			continue
		case fnErr && r.s.BisectBatchOnFunctionError && len(a.recs) > 1:
			r.log.Info("invoke failed; bisecting", "shard_id", shard, "records", len(a.recs), "err", err)
			hs.outcome(Outcome{ShardID: shard, Records: len(a.recs), Result: ResultBisected, Retries: a.failures, Err: err})
			half := len(a.recs) / 2
			left, right := *a, *a
			left.recs, right.recs = a.recs[:half], a.recs[half:]
			queue = append([]attempt{left, right}, queue[1:]...)
			book.save(ctx, queue)
			continue
		}
		o := Outcome{ShardID: shard, Records: len(a.recs), Result: ResultFunctionError, Err: err}
		if !fnErr {
			o.Result = ResultPartialFailure
		}
		if failedAt > 0 {
			// Checkpoint before the lowest failed item, retry from it.
			if err := commit(ctx, a.recs[failedAt-1]); err != nil {
				return err
			}
			o.Checkpoint, o.Settled = a.recs[failedAt-1].SequenceNumber, failedAt
			a.recs = a.recs[failedAt:]
		}
		a.failures++
		a.fnErr = fnErr
		o.Retries = a.failures
		hs.outcome(o)
		r.log.Info("invoke failed", "shard_id", shard, "records", len(a.recs), "failures", a.failures, "err", err)
		if r.s.maxRetries >= 0 && a.failures > r.s.maxRetries {
			if err := r.giveUp(ctx, RetryAttemptsExhausted, a.recs[0], a.recs[len(a.recs)-1], len(a.recs), *a, commit); err != nil {
				return err
			}
			queue = queue[1:]
			book.save(ctx, queue)
			continue
		}
		book.save(ctx, queue)
		if err := r.pause(ctx, r.backoff(a.failures)); err != nil {
			return err
		}
	}
	return nil
}

// notReached reports an invoke that did not reach the function (the n-th in
// a row) and waits before the next: Lambda retries these until the records
// expire, spending no retry attempt.
func (r *runner) notReached(ctx context.Context, shard string, records, retries int, ie *InvokeError, n int) error {
	result := ResultInvokeError
	if ie.Throttled() {
		result = ResultThrottled
	}
	r.log.Info("invoke did not reach the function; retrying", "shard_id", shard, "records", records, "err", ie)
	hooks(r.s.Hooks).outcome(Outcome{ShardID: shard, Records: records, Result: result, Retries: retries, Err: ie})
	return r.pause(ctx, r.backoff(n))
}

// expired returns how many leading records are older than
// MaximumRecordAgeInSeconds.
func (r *runner) expired(recs []consumer.Record) int {
	if r.s.maxAge <= 0 {
		return 0
	}
	now := r.s.Now()
	k := 0
	for k < len(recs) && now.Sub(recs[k].ApproximateArrivalTimestamp) > r.s.maxAge {
		k++
	}
	return k
}

// lowestFailure returns the index of the lowest record a partial batch
// response reports, -1 when it reports none. ok is false when the response
// is invalid (an empty itemIdentifier, or one not in the batch): Lambda
// then counts the whole batch as failed. With Deaggregate, the records of
// one KPL aggregate share a sequence number; the first of them is the one
// retried from. The batch is indexed once: a response naming every record
// costs one pass over the batch, not one per item.
func lowestFailure(resp events.KinesisTimeWindowEventResponse, recs []consumer.Record) (idx int, ok bool) {
	if len(resp.BatchItemFailures) == 0 {
		return -1, true
	}
	first := make(map[string]int, len(recs)) // sequence number -> its first record
	for i := len(recs) - 1; i >= 0; i-- {
		first[recs[i].SequenceNumber] = i
	}
	idx = len(recs)
	for _, f := range resp.BatchItemFailures {
		i, found := first[f.ItemIdentifier]
		if !found || f.ItemIdentifier == "" {
			return 0, false
		}
		idx = min(idx, i)
	}
	return idx, true
}

// giveUp delivers the invocation record of the n records first…last to the
// on-failure destination, retrying until it is accepted, then commits them.
func (r *runner) giveUp(ctx context.Context, condition string, first, last consumer.Record, n int, a attempt, commit commitFunc) error {
	rec := InvocationRecord{
		RequestContext: RequestContext{RequestID: requestID(), FunctionARN: r.src.functionARN, Condition: condition, ApproximateInvokeCount: a.invokes},
		Version:        "1.0",
		Timestamp:      lambdaTime(r.s.Now()),
		KinesisBatchInfo: KinesisBatchInfo{
			ShardID:                         first.ShardID,
			StartSequenceNumber:             first.SequenceNumber,
			EndSequenceNumber:               last.SequenceNumber,
			ApproximateArrivalOfFirstRecord: lambdaTime(first.ApproximateArrivalTimestamp),
			ApproximateArrivalOfLastRecord:  lambdaTime(last.ApproximateArrivalTimestamp),
			BatchSize:                       n,
			StreamARN:                       r.src.streamARN,
		},
		// The records given up are a.recs[:n] (a window's final invoke
		// has none).
		Event: r.src.event(a.recs[:min(n, len(a.recs))]),
	}
	if a.invokes > 0 {
		rec.ResponseContext = ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST"}
		if a.fnErr {
			rec.ResponseContext.FunctionError = "Unhandled"
		}
	}
	r.log.Warn("giving up batch", "shard_id", first.ShardID, "condition", condition, "records", n, "invokes", a.invokes)
	hs := hooks(r.s.Hooks)
	if r.s.OnFailure == nil {
		hs.dropped(first.ShardID, condition, n, nil)
	} else {
		for fails := 1; ; fails++ {
			err := r.s.OnFailure.Deliver(ctx, rec)
			hs.dropped(first.ShardID, condition, n, err)
			if err == nil {
				break
			}
			r.log.Error("on-failure delivery failed; retrying", "shard_id", first.ShardID, "err", err)
			if err := r.pause(ctx, r.backoff(fails)); err != nil {
				return err
			}
		}
	}
	if err := commit(ctx, last); err != nil {
		return err
	}
	hs.outcome(Outcome{ShardID: first.ShardID, Records: n, Result: condition, Settled: n, Retries: a.failures, Checkpoint: last.SequenceNumber})
	return nil
}

// pause waits d before a retry; it ends early with errStopping when Run
// stops, so a failing shard does not hold up the shutdown.
func (r *runner) pause(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.stopping, cancel)()
	if err := backoff.Sleep(ctx, d); err != nil {
		if r.stopping.Err() != nil {
			return errStopping
		}
		return err
	}
	return nil
}

// backoff is the pause after the n-th consecutive failure.
func (r *runner) backoff(n int) time.Duration {
	return backoff.Delay(r.s.RetryDelay, maxRetryDelay, n-1)
}
