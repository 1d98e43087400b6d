package esm

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// ProcessOption configures ProcessBatch.
type ProcessOption interface{ apply(*processConfig) }

type processConfig struct{ stopAtFirstFailure bool }

type processOptionFunc func(*processConfig)

func (f processOptionFunc) apply(c *processConfig) { f(c) }

// StopAtFirstFailure stops at the first record that fails and reports it
// and every later record as failed without processing them, so the records
// after a failure are never handled before it (per-key order survives the
// retry). Default: every record is processed.
func StopAtFirstFailure() ProcessOption {
	return processOptionFunc(func(c *processConfig) { c.stopAtFirstFailure = true })
}

// ProcessBatch is for handler authors using ReportBatchItemFailures: it
// calls fn for each record of ev in order and returns the partial batch
// response naming the records that failed (fn returned an error or
// panicked). Records left when ctx ends are reported failed unprocessed.
// Lambda retries from the lowest failed record.
func ProcessBatch(ctx context.Context, ev events.KinesisEvent, fn func(ctx context.Context, rec events.KinesisEventRecord) error, opts ...ProcessOption) events.KinesisEventResponse {
	var cfg processConfig
	for _, o := range opts {
		o.apply(&cfg)
	}
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	failed := false
	for _, rec := range ev.Records {
		if (failed && cfg.stopAtFirstFailure) || ctx.Err() != nil || processRecord(ctx, fn, rec) != nil {
			failed = true
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: rec.Kinesis.SequenceNumber})
		}
	}
	return resp
}

// processRecord calls fn, a panic counting as its error.
func processRecord(ctx context.Context, fn func(context.Context, events.KinesisEventRecord) error, rec events.KinesisEventRecord) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("esm: record %s panicked: %v", rec.Kinesis.SequenceNumber, p)
		}
	}()
	return fn(ctx, rec)
}
