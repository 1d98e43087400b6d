package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/esm"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/spf13/cobra"
)

// rieInvokePath is where the Lambda runtime interface emulator (and `sam
// local start-lambda` with a function named "function") serves invokes.
const rieInvokePath = "/2015-03-31/functions/function/invocations"

func esmCmd() *cobra.Command {
	var (
		a                                        awsFlags
		cfg                                      esm.Config
		functionURL, startAt, onFailure, leaseDB string
		fanOut                                   string
		destEndpoint, filters, responseTypes     string
		batchingWindow, maxRecordAge, tumbling   time.Duration
		maxRetries                               int
		count                                    int
		untilIdle, poll                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "esm --stream S --function-url URL",
		Short: "Run a Lambda function over a stream as Lambda's event source mapping does",
		Long: `Drive any Lambda function, in any language, over the Lambda Invoke HTTP API
(POST …/2015-03-31/functions/NAME/invocations, as served by Lambda, ` + "`sam local\nstart-lambda`" + ` and the Lambda runtime interface emulator), with the
semantics of Lambda's Kinesis event source mapping (see package esm).
--function-url without a path invokes the emulator's ` + rieInvokePath + `.

The mapping flags mirror CreateEventSourceMapping. A function error is an
X-Amz-Function-Error answer, a malformed response or running past
--function-timeout. Another status than 200 (429 when throttled, a 5xx
service error) or a failed request means the function did not run: as Lambda
does, the invoke is retried with back-off without spending a retry attempt,
until the records are older than --maximum-record-age. KPL aggregates reach
the function whole, as with Lambda; --deaggregate takes them apart.

--on-failure takes file:PATH (JSON lines), sqs:QUEUE_URL, sns:TOPIC_ARN,
s3:BUCKET (objects carrying the batch's event, as Lambda writes them),
kinesis:STREAM (a ksp extension; the source's endpoint by default) or
http:URL; SQS, SNS, S3 and Kinesis use the AWS flags, at
--destination-endpoint when given.

Checkpoints go to --lease-db (a SQLite file: a restarted runner resumes, with
the retries a failing batch has left, and several share the shards), in memory
by default. --fanout NAME reads over enhanced fan-out. One line per invoke outcome
(shard, records, result, retries, checkpoint), and a summary at the end.
--count N stops once N records are settled, --until-idle D after D without
an invoke.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Stream == "" || functionURL == "" {
				return usageError{errors.New("--stream and --function-url are required")}
			}
			invokeURL, err := parseFunctionURL(functionURL)
			if err != nil {
				return err
			}
			cfg.MaximumBatchingWindowInSeconds = int(batchingWindow / time.Second)
			cfg.TumblingWindowInSeconds = int(tumbling / time.Second)
			cfg.MaximumRetryAttempts = esm.Int(maxRetries)
			cfg.MaximumRecordAgeInSeconds = esm.Int(-1)
			if maxRecordAge >= 0 {
				cfg.MaximumRecordAgeInSeconds = esm.Int(int(maxRecordAge / time.Second))
			}
			if responseTypes != "" {
				cfg.FunctionResponseTypes = strings.Split(responseTypes, ",")
			}
			if filters != "" {
				if err := json.Unmarshal([]byte(filters), &cfg.FilterCriteria); err != nil {
					cfg.FilterCriteria = []string{filters} // one pattern
				}
			}
			cfg.StartingPosition = strings.ToUpper(strings.ReplaceAll(cfg.StartingPosition, "-", "_"))
			if startAt != "" {
				if cfg.StartingPositionTimestamp, err = time.Parse(time.RFC3339, startAt); err != nil {
					return usageError{fmt.Errorf("--starting-position-timestamp %q: want RFC 3339", startAt)}
				}
			}
			if count < 0 {
				return usageError{fmt.Errorf("--count %d is negative", count)}
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			awsCfg, endpoint, err := a.config(ctx)
			if err != nil {
				return err
			}
			defer a.done()
			cfg.Kinesis = kinesisFrom(awsCfg, endpoint)
			if cfg.OnFailure, err = destination(awsCfg, onFailure, destEndpoint, leaseTable(cfg.Stream), endpoint); err != nil {
				return err
			}
			if c, ok := cfg.OnFailure.(io.Closer); ok {
				defer c.Close()
			}
			store, err := leaseStore(ctx, leaseDB, cfg.Stream)
			if err != nil {
				return err
			}
			defer store.Close()
			cfg.LeaseStore = store
			cfg.PollInterval = poll
			if fanOut != "" {
				cfg.ConsumerOptions = append(cfg.ConsumerOptions, consumer.WithFanOut(fanOut))
			}
			rep := &esmReport{out: cmd.OutOrStdout(), count: count, stop: cancel, activity: make(chan struct{}, 1)}
			cfg.Hooks = []esm.Hook{rep}
			var idle sync.WaitGroup
			defer idle.Wait()
			defer cancel() // before the Wait: ends stopWhenIdle
			if untilIdle > 0 {
				idle.Go(func() { rep.stopWhenIdle(ctx, untilIdle) })
			}
			err = esm.Run(ctx, cfg, esm.InvokeHTTP(nil, invokeURL))
			rep.summary()
			if err != nil && !errors.Is(err, context.Canceled) {
				var ve *esm.ValidationError
				if errors.As(err, &ve) {
					return usageError{err}
				}
				return a.explain(err)
			}
			return nil
		},
	}
	a.register(cmd)
	f := cmd.Flags()
	f.StringVar(&cfg.Stream, "stream", "", "the stream's name (required)")
	f.StringVar(&functionURL, "function-url", "", "the function's Lambda Invoke API URL (required)")
	f.IntVar(&cfg.BatchSize, "batch-size", 100, "most records per invoke, 1–10000")
	f.DurationVar(&batchingWindow, "batching-window", 0, "MaximumBatchingWindowInSeconds, 0–300s")
	f.StringVar(&cfg.StartingPosition, "starting-position", "trim-horizon", "trim-horizon, latest or at-timestamp")
	f.StringVar(&startAt, "starting-position-timestamp", "", "RFC 3339 time for at-timestamp")
	f.IntVar(&cfg.ParallelizationFactor, "parallelization-factor", 1, "concurrent batches per shard, 1–10")
	f.BoolVar(&cfg.BisectBatchOnFunctionError, "bisect-batch-on-function-error", false, "split a failed batch in two and retry each half")
	f.IntVar(&maxRetries, "maximum-retry-attempts", -1, "retries before the on-failure destination, -1 (until the records expire) or 0–10000")
	f.DurationVar(&maxRecordAge, "maximum-record-age", -1, "MaximumRecordAgeInSeconds, 60s–604800s (-1: no limit)")
	f.StringVar(&responseTypes, "function-response-types", "", "ReportBatchItemFailures for partial batch responses")
	f.DurationVar(&tumbling, "tumbling-window", 0, "TumblingWindowInSeconds, 0–900s")
	f.StringVar(&filters, "filter-criteria", "", `a filter pattern, or a JSON array of them, e.g. '{"data":{"kind":["order"]}}'`)
	f.StringVar(&onFailure, "on-failure", "", "file:PATH, sqs:QUEUE_URL, sns:TOPIC_ARN, s3:BUCKET, kinesis:STREAM or http:URL")
	f.StringVar(&destEndpoint, "destination-endpoint", "", "SQS/SNS/S3 endpoint URL for --on-failure (default: AWS's)")
	f.BoolVar(&cfg.Deaggregate, "deaggregate", false, "take KPL aggregates apart (Lambda hands them to the function whole)")
	f.DurationVar(&cfg.FunctionTimeout, "function-timeout", 3*time.Second, "the function timeout, 1s–900s")
	f.StringVar(&fanOut, "fanout", "", "read with enhanced fan-out as this stream consumer (registered when missing), as a mapping on a consumer ARN does")
	f.StringVar(&leaseDB, "lease-db", "", "SQLite file for the checkpoints (default: in memory)")
	f.IntVar(&count, "count", 0, "stop once this many records are settled (0: never)")
	f.DurationVar(&untilIdle, "until-idle", 0, "stop after this long without an invoke (0: never)")
	f.DurationVar(&poll, "poll", time.Second, "wait between reads of a shard")
	return cmd
}

// parseFunctionURL returns the invoke URL: url itself, or the emulator's
// invocations path when url has none.
func parseFunctionURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError{fmt.Errorf("--function-url %q: want an http(s) URL", s)}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = rieInvokePath
	}
	return u.String(), nil
}

// destination builds --on-failure's destination (nil without one);
// mappingID names the mapping in S3 object keys; a Kinesis stream is at
// endpoint, else at the source's kinesisEndpoint.
func destination(cfg aws.Config, spec, endpoint, mappingID, kinesisEndpoint string) (esm.Destination, error) {
	if spec == "" {
		return nil, nil
	}
	kind, where, _ := strings.Cut(spec, ":")
	if where == "" {
		kind = ""
	}
	switch kind {
	case "file":
		return esm.NewFileDestination(where)
	case "http", "https":
		return esm.NewHTTPDestination(nil, spec), nil
	case "sqs":
		return esm.NewSQSDestination(sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
		}), where), nil
	case "sns":
		return esm.NewSNSDestination(sns.NewFromConfig(cfg, func(o *sns.Options) {
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
		}), where), nil
	case "kinesis":
		if endpoint == "" {
			endpoint = kinesisEndpoint
		}
		return esm.NewKinesisDestination(kinesisFrom(cfg, endpoint), where), nil
	case "s3":
		return esm.NewS3Destination(s3.NewFromConfig(cfg, func(o *s3.Options) {
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
				o.UsePathStyle = true // local S3s (moto, MinIO) serve bucket paths
			}
		}), where, mappingID), nil
	}
	return nil, usageError{fmt.Errorf("--on-failure %q: want file:PATH, sqs:QUEUE_URL, sns:TOPIC_ARN, s3:BUCKET, kinesis:STREAM or http:URL", spec)}
}

// leaseStore opens the checkpoints' store: the SQLite file path, or memory.
func leaseStore(ctx context.Context, path, stream string) (lease.Store, error) {
	if path == "" {
		return memory.New(), nil
	}
	s, err := sqlite.Open(ctx, path, leaseTable(stream))
	if err != nil {
		return nil, fmt.Errorf("--lease-db %s: %w", path, err)
	}
	return s, nil
}

// leaseTable names the mapping's lease table, which plays the role of the
// mapping's UUID.
func leaseTable(stream string) string { return "ksp-esm-" + stream }

// esmReport prints each outcome and counts them for the summary.
type esmReport struct {
	out      io.Writer
	count    int
	stop     context.CancelFunc
	activity chan struct{}

	mu                               sync.Mutex // guards the counts and out
	invokes, failures, settled, gave int
	unreached                        int // invokes that did not reach the function
}

func (r *esmReport) OnOutcome(o esm.Outcome) {
	select {
	case r.activity <- struct{}{}:
	default:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := o.Checkpoint
	if cp == "" {
		cp = "-"
	}
	fmt.Fprintf(r.out, "%s records=%d result=%s retries=%d checkpoint=%s\n", o.ShardID, o.Records, o.Result, o.Retries, cp)
	r.settled += o.Settled
	switch o.Result {
	case esm.RetryAttemptsExhausted, esm.RecordAgeExceeded:
		r.gave += o.Records
	case esm.ResultSucceeded:
		r.invokes++
	case esm.ResultThrottled, esm.ResultInvokeError:
		r.unreached++
	default:
		r.invokes++
		r.failures++
	}
	if r.count > 0 && r.settled >= r.count {
		r.stop()
	}
}

// stopWhenIdle stops the run once no outcome came for d.
func (r *esmReport) stopWhenIdle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.activity:
			t.Reset(d)
		case <-t.C:
			r.stop()
			return
		}
	}
}

func (r *esmReport) summary() {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, "esm: %d invokes, %d failed", r.invokes, r.failures)
	if r.unreached > 0 {
		fmt.Fprintf(r.out, ", %d not reaching the function", r.unreached)
	}
	fmt.Fprintf(r.out, "; %d records settled, %d given up\n", r.settled, r.gave)
}
