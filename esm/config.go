package esm

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
)

// Starting positions (CreateEventSourceMapping StartingPosition).
const (
	TrimHorizon = "TRIM_HORIZON"
	Latest      = "LATEST"
	AtTimestamp = "AT_TIMESTAMP"
)

// ReportBatchItemFailures is the one FunctionResponseTypes value: it turns
// on partial batch responses.
const ReportBatchItemFailures = "ReportBatchItemFailures"

// KinesisAPI is the part of the aws-sdk-go-v2 Kinesis client the runner
// uses; *kinesis.Client satisfies it.
type KinesisAPI interface {
	consumer.KinesisAPI
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Config mirrors CreateEventSourceMapping for a Kinesis source, plus what
// ksp needs to run it locally (the stream client, the lease store, a
// clock). A zero field takes Lambda's default; the fields whose zero is a
// meaningful value (MaximumRetryAttempts, MaximumRecordAgeInSeconds) are
// pointers: nil is the default -1.
type Config struct {
	// Stream is the stream name. Required.
	Stream string
	// Kinesis is the stream's client. Required.
	Kinesis KinesisAPI
	// LeaseStore holds the checkpoints (the table name plays the role of
	// the mapping's UUID): a restarted runner resumes from them, and
	// several runners on one store share the shards. Required.
	LeaseStore lease.Store

	// BatchSize is the most records per invoke, 1–10000. Default 100. A
	// batch is also cut before it would pass the 6 MB invoke payload cap.
	BatchSize int
	// MaximumBatchingWindowInSeconds, 0–300, default 0: how long records
	// are gathered over reads before an invoke, unless a batch is full (see
	// the package doc).
	MaximumBatchingWindowInSeconds int
	// StartingPosition is TRIM_HORIZON, LATEST or AT_TIMESTAMP. Required.
	StartingPosition string
	// StartingPositionTimestamp is the time for AT_TIMESTAMP.
	StartingPositionTimestamp time.Time
	// ParallelizationFactor, 1–10, default 1: how many batches of one
	// shard are invoked at once. Records are spread by partition key, so
	// each key's records are still handled in order.
	ParallelizationFactor int
	// BisectBatchOnFunctionError splits a batch whose invoke failed in two
	// and retries each half; splits do not consume retry attempts.
	BisectBatchOnFunctionError bool
	// MaximumRetryAttempts, -1 (retry until the records expire) or
	// 0–10000. nil: -1.
	MaximumRetryAttempts *int
	// MaximumRecordAgeInSeconds, -1 (no limit) or 60–604800. nil: -1.
	MaximumRecordAgeInSeconds *int
	// FunctionResponseTypes is empty or [ReportBatchItemFailures].
	FunctionResponseTypes []string
	// TumblingWindowInSeconds, 0–900: with a window, invokes carry the
	// window and the state the previous invoke of the window returned, and
	// each window ends with a final invoke (see the package doc).
	TumblingWindowInSeconds int
	// FilterCriteria holds up to 5 filter patterns (the Filters' Pattern
	// strings), EventBridge syntax on the data key, for example
	// {"data":{"kind":["order"],"total":[{"numeric":[">",100]}]}}. A record
	// is invoked when it matches any of them; the others are skipped and
	// checkpointed past. Data that is not a JSON object matches no pattern.
	FilterCriteria []string
	// OnFailure receives the invocation record of each batch given up
	// (DestinationConfig.OnFailure). nil: the batch is dropped and the
	// shard moves on, as Lambda does without a destination.
	OnFailure Destination
	// Deaggregate takes KPL aggregates apart, so the handler gets user
	// records (several with one sequenceNumber). Default false, as Lambda
	// does: an aggregate is one Kinesis record in the event, its data the
	// KPL-framed bytes, for the handler to take apart (with the
	// kinesis-aggregation modules AWS points to).
	Deaggregate bool
	// FunctionTimeout bounds each invoke (Lambda's function timeout,
	// 1–900 s). Default 3 s.
	FunctionTimeout time.Duration

	// FunctionARN is written in invocation records. Default
	// arn:aws:lambda:REGION:ACCOUNT:function:ksp-esm, from the stream ARN.
	FunctionARN string
	// InvokeIdentityArn is the invokeIdentityArn of every event record.
	// Default arn:aws:iam::ACCOUNT:role/ksp-esm.
	InvokeIdentityArn string
	// PollInterval is the pause between two GetRecords calls on a shard
	// (Lambda polls about once a second). Default 1 s; tests lower it.
	PollInterval time.Duration
	// RetryDelay is the first pause before retrying a failed invoke or
	// delivery; it doubles (with jitter) up to 30 s. Default 100 ms.
	RetryDelay time.Duration
	// Now is the clock for record ages and invocation-record timestamps.
	// Default time.Now.
	Now func() time.Time
	// Logger receives one record per invoke outcome. Default: discard.
	Logger *slog.Logger
	// Hooks receive metrics (see Hook); Run refuses a value implementing
	// no Hook interface. Default none.
	Hooks []Hook
	// ConsumerOptions are passed to the underlying consumer after the
	// runner's own (for example consumer.WithWorkerID, consumer.WithHooks,
	// consumer.WithFanOut).
	ConsumerOptions []consumer.Option

	// maxPayload replaces MaxPayloadBytes when set: tests reach the cap
	// with small records.
	maxPayload int
}

// Int returns a pointer to n, for MaximumRetryAttempts and
// MaximumRecordAgeInSeconds.
func Int(n int) *int { return &n }

// ValidationError is what Run returns for a mapping value Lambda refuses,
// with the Lambda API's error code (ValidationException or
// InvalidParameterValueException) and message.
type ValidationError struct {
	Code    string
	Message string
}

func (e *ValidationError) Error() string { return "esm: " + e.Code + ": " + e.Message }

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	maxRetries int // -1: unlimited
	maxAge     time.Duration
	reportItem bool
	filters    []filter
}

// validate applies Lambda's defaults and checks Lambda's ranges. Range and
// enum violations are reported together as one ValidationException, in the
// Smithy wording the Lambda API uses; a value in range that Lambda still
// refuses is an InvalidParameterValueException.
func (c Config) validate() (settings, error) {
	var v []string
	rangeCheck := func(field string, val, lo, hi int) {
		if val < lo {
			v = append(v, fmt.Sprintf("Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", val, field, lo))
		} else if val > hi {
			v = append(v, fmt.Sprintf("Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", val, field, hi))
		}
	}
	s := settings{Config: c, maxRetries: -1}
	if s.BatchSize == 0 {
		s.BatchSize = 100
	}
	if s.ParallelizationFactor == 0 {
		s.ParallelizationFactor = 1
	}
	if s.FunctionTimeout == 0 {
		s.FunctionTimeout = 3 * time.Second
	}
	if s.PollInterval == 0 {
		s.PollInterval = time.Second
	}
	if s.RetryDelay == 0 {
		s.RetryDelay = 100 * time.Millisecond
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	rangeCheck("batchSize", s.BatchSize, 1, 10000)
	rangeCheck("maximumBatchingWindowInSeconds", s.MaximumBatchingWindowInSeconds, 0, 300)
	rangeCheck("parallelizationFactor", s.ParallelizationFactor, 1, 10)
	rangeCheck("tumblingWindowInSeconds", s.TumblingWindowInSeconds, 0, 900)
	if s.MaximumRetryAttempts != nil {
		s.maxRetries = *s.MaximumRetryAttempts
		rangeCheck("maximumRetryAttempts", s.maxRetries, -1, 10000)
	}
	ageSeconds := -1
	if s.MaximumRecordAgeInSeconds != nil {
		ageSeconds = *s.MaximumRecordAgeInSeconds
		rangeCheck("maximumRecordAgeInSeconds", ageSeconds, -1, 604800)
	}
	switch s.StartingPosition {
	case TrimHorizon, Latest, AtTimestamp:
	default:
		v = append(v, fmt.Sprintf("Value '%s' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]", s.StartingPosition))
	}
	for i, t := range s.FunctionResponseTypes {
		if t != ReportBatchItemFailures {
			v = append(v, fmt.Sprintf("Value '%s' at 'functionResponseTypes.%d.member' failed to satisfy constraint: Member must satisfy enum value set: [ReportBatchItemFailures]", t, i+1))
		}
		s.reportItem = true
	}
	if s.FunctionTimeout < time.Second || s.FunctionTimeout > 900*time.Second {
		v = append(v, fmt.Sprintf("Value '%d' at 'timeout' failed to satisfy constraint: Member must have value between 1 and 900", int64(s.FunctionTimeout/time.Second)))
	}
	if len(v) > 0 {
		noun := "error"
		if len(v) > 1 {
			noun = "errors"
		}
		return s, &ValidationError{Code: "ValidationException", Message: fmt.Sprintf("%d validation %s detected: %s", len(v), noun, strings.Join(v, "; "))}
	}
	invalid := func(msg string, args ...any) (settings, error) {
		return s, &ValidationError{Code: "InvalidParameterValueException", Message: fmt.Sprintf(msg, args...)}
	}
	if ageSeconds != -1 && ageSeconds < 60 {
		return invalid("MaximumRecordAgeInSeconds must be -1 or between 60 and 604800, not %d", ageSeconds)
	}
	if ageSeconds > 0 {
		s.maxAge = time.Duration(ageSeconds) * time.Second
	}
	if s.StartingPosition == AtTimestamp && s.StartingPositionTimestamp.IsZero() {
		return invalid("StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP")
	}
	if s.StartingPosition != AtTimestamp && !s.StartingPositionTimestamp.IsZero() {
		return invalid("StartingPositionTimestamp is only allowed when StartingPosition is AT_TIMESTAMP, not %s", s.StartingPosition)
	}
	if len(s.FilterCriteria) > 5 {
		return invalid("FilterCriteria holds %d filters; at most 5 are allowed", len(s.FilterCriteria))
	}
	for _, p := range s.FilterCriteria {
		f, err := compileFilter(p)
		if err != nil {
			return invalid("Invalid filter pattern definition. %v", err)
		}
		s.filters = append(s.filters, f)
	}
	if s.Stream == "" || s.Kinesis == nil || s.LeaseStore == nil {
		return invalid("Stream, Kinesis and LeaseStore are required (Stream %q)", s.Stream)
	}
	for i, h := range s.Hooks {
		if !isHook(h) {
			return invalid("Hooks[%d] (%T) implements no Hook interface", i, h)
		}
	}
	if s.PollInterval < time.Millisecond || s.RetryDelay < time.Millisecond {
		return invalid("PollInterval %v and RetryDelay %v must be at least 1ms", s.PollInterval, s.RetryDelay)
	}
	return s, nil
}

// unsupported reports a valid setting ksp does not implement yet.
func (s settings) unsupported() error {
	switch {
	case s.TumblingWindowInSeconds > 0 && s.ParallelizationFactor > 1:
		return fmt.Errorf("%w: TumblingWindowInSeconds %d with ParallelizationFactor %d", ErrUnsupported, s.TumblingWindowInSeconds, s.ParallelizationFactor)
	}
	return nil
}
