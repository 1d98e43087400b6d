package esm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/sink"
)

// Conditions of an invocation record: why a batch was given up.
const (
	RetryAttemptsExhausted = "RetryAttemptsExhausted"
	RecordAgeExceeded      = "RecordAgeExceeded"
)

// InvocationRecord is what Lambda sends to an on-failure destination for a
// Kinesis batch it gives up: where the batch lies in the shard, not its
// data (the reader fetches that from the stream while it is retained).
type InvocationRecord struct {
	RequestContext   RequestContext   `json:"requestContext"`
	ResponseContext  ResponseContext  `json:"responseContext"`
	Version          string           `json:"version"`
	Timestamp        string           `json:"timestamp"`
	KinesisBatchInfo KinesisBatchInfo `json:"KinesisBatchInfo"`
}

// RequestContext says which function gave up the batch and why.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext describes the last invoke. FunctionError is "Unhandled"
// when it failed (an error, a panic, a timeout) and empty when it returned
// a partial batch response; StatusCode is 0 when the batch was never
// invoked (it expired before its first invoke).
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// KinesisBatchInfo locates the batch given up. Times are RFC 3339 in UTC
// with milliseconds, as Lambda writes them.
type KinesisBatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// lambdaTime formats times in invocation records.
func lambdaTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// requestID returns a random UUID (version 4), as Lambda request ids are.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Destination receives the invocation records of batches given up. The
// shard does not move past a batch until Deliver returned nil for it: a
// failing destination is retried with back-off, so nothing is lost.
type Destination interface {
	Deliver(ctx context.Context, rec InvocationRecord) error
}

// DestinationFunc adapts a function to a Destination.
type DestinationFunc func(ctx context.Context, rec InvocationRecord) error

// Deliver calls f.
func (f DestinationFunc) Deliver(ctx context.Context, rec InvocationRecord) error { return f(ctx, rec) }

// FileDestination appends each invocation record to a file as one line of
// JSON and syncs it before Deliver returns, so a delivered record survives
// a crash (a sink.File).
type FileDestination struct{ f *sink.File }

// NewFileDestination opens (creating it if needed) the JSON-lines file at
// path for appending.
func NewFileDestination(path string) (*FileDestination, error) {
	f, err := sink.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("esm: on-failure destination: %w", err)
	}
	return &FileDestination{f: f}, nil
}

// Deliver appends rec as one line and syncs the file.
func (d *FileDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	return send(ctx, d.f, rec)
}

// Close closes the file; it is idempotent.
func (d *FileDestination) Close() error { return d.f.Close() }

// send delivers rec through s as its JSON, keyed by the batch's shard.
func send(ctx context.Context, s sink.Sink, rec InvocationRecord) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("esm: encoding invocation record: %w", err)
	}
	return s.Send(ctx, sink.Message{Body: body, Key: rec.KinesisBatchInfo.ShardID})
}

// SinkDestination delivers invocation records through any sink (see
// package sink), as their JSON keyed by the batch's shard id.
func SinkDestination(s sink.Sink) Destination {
	return DestinationFunc(func(ctx context.Context, rec InvocationRecord) error { return send(ctx, s, rec) })
}
