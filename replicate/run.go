package replicate

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/producer"
)

// closeTimeout bounds closing the destination producer once the consumer
// stopped. Every batch has been waited for by then, so what is left belongs
// to batches that were abandoned (not checkpointed) and will be sent again.
const closeTimeout = 10 * time.Second

// Run replicates cfg.From into cfg.To until ctx ends, then shuts down
// gracefully (every batch being forwarded is finished and checkpointed, the
// leases are released) and returns nil. It returns an error when the
// configuration is invalid or the consumer cannot start.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("to", cfg.To)
	popts := append(append([]producer.Option{producer.Logger(log)}, cfg.ProducerOptions...), producer.StrictOrdering(true))
	prod, err := producer.New(cfg.Destination, cfg.To, popts...)
	if err != nil {
		return fmt.Errorf("replicate: destination producer: %w", err)
	}
	r := &replicator{prod: prod, transform: cfg.Transform, window: cfg.MaxInFlight, hooks: cfg.Hooks, log: log.With("stream", cfg.From)}
	if r.window == 0 {
		r.window = DefaultMaxInFlight
	}
	if r.transform == nil {
		r.transform = Identity
	}
	copts := append([]consumer.Option{consumer.WithInitialPosition(consumer.TrimHorizon()), consumer.WithLogger(log)}, cfg.ConsumerOptions...)
	copts = append(copts, consumer.WithStream(cfg.From), consumer.WithKinesis(cfg.Source), consumer.WithLeaseStore(cfg.Leases), consumer.WithProcessor(func(string) consumer.RecordProcessor { return processor{r} }))
	c, err := consumer.New(copts...)
	if err == nil {
		err = c.Run(ctx)
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if cerr := prod.Close(closeCtx); cerr != nil {
		log.Warn("replicate: closing the destination producer", "err", cerr)
	}
	return err
}

type replicator struct {
	prod      *producer.Producer
	transform Transform
	window    int
	hooks     hooks
	log       *slog.Logger
}

// processor forwards one source shard.
type processor struct{ r *replicator }

func (p processor) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p processor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	return p.r.forward(ctx, in.ShardID, in.Records, in.Checkpointer)
}

func (p processor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// ShutdownRequested has nothing to do: every batch was checkpointed when
// ProcessRecords returned.
func (p processor) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	return nil
}

func (p processor) LeaseLost(context.Context, consumer.LeaseLostInput) {}

// slot is a record put and not yet acknowledged.
type slot struct {
	i int
	p *producer.Pending
}

// forward sends a batch of a source shard, keeping at most r.window
// records in flight, and checkpoints the acknowledged prefix every window
// records and at the end. On a failure it waits for the records in flight,
// checkpoints the prefix before the failed record and returns the error:
// the consumer delivers the rest again after a back-off.
func (r *replicator) forward(ctx context.Context, shard string, recs []consumer.Record, ckp *consumer.Checkpointer) error {
	start := time.Now()
	var (
		inflight  []slot
		done      int // records 0…done-1 are acknowledged or dropped
		saved     int // records 0…saved-1 are checkpointed (by this call)
		failAt    = -1
		failed    error
		sent, drp int
	)
	fail := func(i int, err error) {
		if failAt < 0 || i < failAt {
			failAt, failed = i, fmt.Errorf("record %s/%d: %w", recs[i].SequenceNumber, recs[i].SubSequenceNumber, err)
		}
	}
	// settle waits for the oldest record in flight.
	settle := func() error {
		s := inflight[0]
		inflight = inflight[1:]
		if _, err := s.p.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // lease lost or shutdown timed out: nothing more is checkpointed
			}
			fail(s.i, err)
			return nil
		}
		sent++
		if at := recs[s.i].ApproximateArrivalTimestamp; !at.IsZero() {
			r.hooks.lag(shard, time.Since(at))
		}
		if failAt < 0 || s.i < failAt {
			done = s.i + 1 // slots settle in order: everything before s.i is settled
		}
		return nil
	}
	checkpoint := func() error {
		if done == saved {
			return nil
		}
		if err := ckp.CheckpointRecord(ctx, recs[done-1]); err != nil {
			return err
		}
		saved = done
		return nil
	}
	for i, rec := range recs {
		for len(inflight) >= r.window {
			if err := settle(); err != nil {
				return err
			}
		}
		if failAt >= 0 {
			break
		}
		if done-saved >= r.window {
			if err := checkpoint(); err != nil {
				return err
			}
		}
		rec.Data = bytes.Clone(rec.Data) // the consumer's buffer is only valid during this call
		out, keep, err := r.transform(ctx, rec)
		if err == nil && !keep {
			drp++
			if len(inflight) == 0 {
				done = i + 1
			}
			continue
		}
		var pd *producer.Pending
		if err == nil {
			pd, err = r.prod.Put(ctx, out)
		}
		if err != nil {
			fail(i, err)
			break
		}
		inflight = append(inflight, slot{i, pd})
	}
	// Wait for every record put, also after a failure: sending a record
	// again while its first copy is in flight could reorder its key.
	for len(inflight) > 0 {
		if err := settle(); err != nil {
			return err
		}
	}
	if failAt < 0 {
		done = len(recs) // trailing dropped records too
	}
	if err := checkpoint(); err != nil {
		return err
	}
	if failed == nil {
		r.hooks.batch(shard, sent, drp, time.Since(start))
		return nil
	}
	failed = fmt.Errorf("replicate: shard %s: %w", shard, failed)
	r.hooks.deliveryError(shard, failed)
	r.log.Warn("replicate: record not delivered; the records before it are checkpointed, the rest sent again", "shard_id", shard, "err", failed)
	return failed
}
