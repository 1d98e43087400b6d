package esm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/ksp-project/ksp/consumer"
)

func TestSuccessCheckpointsHighestSequenceNumber(t *testing.T) {
	s := newStream(t, 7)
	cfg := s.config()
	cfg.BatchSize = 3
	got := run(s, cfg, failing(s, 0))
	expectLog(t, got,
		"invoke r0,r1,r2", "checkpoint r2",
		"invoke r3,r4,r5", "checkpoint r5",
		"invoke r6", "checkpoint r6")
}

// reporting returns a handler with partial responses: on its i-th invoke
// it reports the items responses[i] gives (names of records, or literal
// identifiers prefixed "=" ), and nothing after the last.
func reporting(s *stream, responses ...[]string) func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	var n atomic.Int32
	return func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		s.logInvoke(ev)
		i := int(n.Add(1)) - 1
		var resp events.KinesisEventResponse
		if i >= len(responses) {
			return resp, nil
		}
		for _, name := range responses[i] {
			id, ok := strings.CutPrefix(name, "=")
			if !ok {
				id = s.seqs[mustAtoi(strings.TrimPrefix(name, "r"))]
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: id})
		}
		return resp, nil
	}
}

func mustAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestPartialBatchResponseRetriesFromLowestFailure(t *testing.T) {
	s := newStream(t, 5)
	cfg := s.config()
	cfg.BatchSize = 5
	cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
	got := run(s, cfg, reporting(s, []string{"r3", "r1"}, []string{}))
	expectLog(t, got,
		"invoke r0,r1,r2,r3,r4", "checkpoint r0",
		"invoke r1,r2,r3,r4", "checkpoint r4")
}

func TestPartialBatchResponseIgnoredWithoutReportBatchItemFailures(t *testing.T) {
	s := newStream(t, 3)
	cfg := s.config()
	got := run(s, cfg, reporting(s, []string{"r1"}))
	expectLog(t, got, "invoke r0,r1,r2", "checkpoint r2")
}

func TestInvalidItemIdentifierFailsWholeBatch(t *testing.T) {
	for name, id := range map[string]string{"empty": "=", "not in batch": "=49590338271490256608559692538361571095921575989136588898"} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t, 3)
			cfg := s.config()
			cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
			cfg.MaximumRetryAttempts = Int(1)
			// r2 is a valid failure, but the invalid item fails everything:
			// no checkpoint, the whole batch again, then the destination.
			got := run(s, cfg, reporting(s, []string{"r2", id}, []string{id}))
			expectLog(t, got,
				"invoke r0,r1,r2",
				"invoke r0,r1,r2", "deliver RetryAttemptsExhausted r0…r2", "checkpoint r2")
			if fe := s.delivered[0].ResponseContext.FunctionError; fe != "Unhandled" {
				t.Fatalf("functionError %q, want Unhandled", fe)
			}
		})
	}
}

func TestBisectOnFunctionErrorSpendsNoRetries(t *testing.T) {
	s := newStream(t, 4)
	cfg := s.config()
	cfg.BatchSize = 4
	cfg.BisectBatchOnFunctionError = true
	cfg.MaximumRetryAttempts = Int(1)
	got := run(s, cfg, failing(s, -1, "r2"))
	expectLog(t, got,
		"invoke r0,r1,r2,r3",
		"invoke r0,r1", "checkpoint r1",
		"invoke r2,r3",
		"invoke r2", // the first failure of a single record: retry 1 of 1
		"invoke r2", "deliver RetryAttemptsExhausted r2…r2", "checkpoint r2",
		"invoke r3", "checkpoint r3")
	expectRecord(t, s.delivered[0], InvocationRecord{ // every invoke that held r2 counts
		RequestContext:   RequestContext{FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:ksp-esm", Condition: RetryAttemptsExhausted, ApproximateInvokeCount: 4},
		ResponseContext:  ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:          "1.0",
		Timestamp:        s.delivered[0].Timestamp,
		KinesisBatchInfo: s.batchInfo(2, 2, 1),
	})
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// expectRecord compares an invocation record with the documented shape,
// field by field; the request id is random.
func expectRecord(t *testing.T, got, want InvocationRecord) {
	t.Helper()
	if !uuidRE.MatchString(got.RequestContext.RequestID) {
		t.Errorf("requestId %q is not a UUID", got.RequestContext.RequestID)
	}
	got.RequestContext.RequestID = ""
	if got.RequestContext != want.RequestContext {
		t.Errorf("requestContext\n got %+v\nwant %+v", got.RequestContext, want.RequestContext)
	}
	if got.ResponseContext != want.ResponseContext {
		t.Errorf("responseContext\n got %+v\nwant %+v", got.ResponseContext, want.ResponseContext)
	}
	if got.Version != want.Version || got.Timestamp != want.Timestamp {
		t.Errorf("version %q timestamp %q, want %q %q", got.Version, got.Timestamp, want.Version, want.Timestamp)
	}
	if got.KinesisBatchInfo != want.KinesisBatchInfo {
		t.Errorf("KinesisBatchInfo\n got %+v\nwant %+v", got.KinesisBatchInfo, want.KinesisBatchInfo)
	}
}

func (s *stream) batchInfo(first, last, size int) KinesisBatchInfo {
	return KinesisBatchInfo{
		ShardID: "shardId-000000000000", StartSequenceNumber: s.seqs[first], EndSequenceNumber: s.seqs[last],
		ApproximateArrivalOfFirstRecord: lambdaTime(s.arrival[s.seqs[first]]),
		ApproximateArrivalOfLastRecord:  lambdaTime(s.arrival[s.seqs[last]]),
		BatchSize:                       size, StreamARN: s.arn,
	}
}

func TestRetriesExhaustedGoToOnFailureFile(t *testing.T) {
	s := newStream(t, 4)
	path := filepath.Join(t.TempDir(), "failures.jsonl")
	file, err := NewFileDestination(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	now := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	cfg := s.config()
	cfg.BatchSize = 2
	cfg.MaximumRetryAttempts = Int(2)
	cfg.Now = func() time.Time { return now }
	cfg.FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"
	// The destination refuses twice: the shard waits, nothing is
	// checkpointed past r1 until the record is written.
	refusals := 2
	cfg.OnFailure = DestinationFunc(func(ctx context.Context, rec InvocationRecord) error {
		if refusals > 0 {
			refusals--
			s.record("destination refused")
			return errors.New("destination down")
		}
		s.record("delivered to file")
		return file.Deliver(ctx, rec)
	})
	got := run(s, cfg, failing(s, -1, "r1"))
	expectLog(t, got,
		"invoke r0,r1", "invoke r0,r1", "invoke r0,r1",
		"destination refused", "destination refused", "delivered to file", "checkpoint r1",
		"invoke r2,r3", "checkpoint r3")

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines in %s, want 1:\n%s", len(lines), path, b)
	}
	// The JSON keys are the documented ones.
	var raw map[string]map[string]any
	if err := json.Unmarshal([]byte(strings.Replace(lines[0], `"version":"1.0","timestamp":"2026-01-02T03:04:05.678Z",`, "", 1)), &raw); err != nil {
		t.Fatalf("%v: %s", err, lines[0])
	}
	keys := map[string][]string{}
	for k, v := range raw {
		for kk := range v {
			keys[k] = append(keys[k], kk)
		}
	}
	wantKeys := map[string][]string{
		"requestContext":   {"approximateInvokeCount", "condition", "functionArn", "requestId"},
		"responseContext":  {"executedVersion", "functionError", "statusCode"},
		"KinesisBatchInfo": {"approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord", "batchSize", "endSequenceNumber", "shardId", "startSequenceNumber", "streamArn"},
	}
	for k := range keys {
		sortStrings(keys[k])
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Fatalf("keys %v, want %v (line %s)", keys, wantKeys, lines[0])
	}
	var rec InvocationRecord
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	expectRecord(t, rec, InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: cfg.FunctionARN, Condition: RetryAttemptsExhausted, ApproximateInvokeCount: 3},
		ResponseContext:  ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:          "1.0",
		Timestamp:        "2026-01-02T03:04:05.678Z",
		KinesisBatchInfo: s.batchInfo(0, 1, 2),
	})
}

func sortStrings(a []string) {
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			if a[j] < a[i] {
				a[i], a[j] = a[j], a[i]
			}
		}
	}
}

// LocalStack's ESM never advanced the retry count on partial failures, so
// its on-failure destination never fired; Lambda counts them.
func TestPartialFailuresSpendRetries(t *testing.T) {
	s := newStream(t, 3)
	cfg := s.config()
	cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
	cfg.MaximumRetryAttempts = Int(1)
	got := run(s, cfg, reporting(s, []string{"r1"}, []string{"r1"}))
	expectLog(t, got,
		"invoke r0,r1,r2", "checkpoint r0",
		"invoke r1,r2", "deliver RetryAttemptsExhausted r1…r2", "checkpoint r2")
	expectRecord(t, s.delivered[0], InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:ksp-esm", Condition: RetryAttemptsExhausted, ApproximateInvokeCount: 2},
		ResponseContext:  ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST"}, // a partial response is no function error
		Version:          "1.0",
		Timestamp:        s.delivered[0].Timestamp,
		KinesisBatchInfo: s.batchInfo(1, 2, 2),
	})
}

func TestRecordAgeExceededGoesToOnFailure(t *testing.T) {
	s := newStream(t, 3)
	var clock atomic.Pointer[time.Time]
	start := s.arrival[s.seqs[2]].Add(time.Second)
	clock.Store(&start)
	cfg := s.config()
	cfg.BatchSize = 2
	cfg.MaximumRecordAgeInSeconds = Int(60)
	cfg.Now = func() time.Time { return *clock.Load() }
	fail := failing(s, -1, "r1")
	// The first invoke fails; meanwhile two minutes pass, so every record is
	// too old before the next invoke: r0…r1 after one invoke, r2 before any.
	got := run(s, cfg, func(ctx context.Context, ev events.KinesisEvent) error {
		later := start.Add(2 * time.Minute)
		clock.Store(&later)
		return fail(ctx, ev)
	})
	expectLog(t, got,
		"invoke r0,r1",
		"deliver RecordAgeExceeded r0…r1", "checkpoint r1",
		"deliver RecordAgeExceeded r2…r2", "checkpoint r2")
	arn := "arn:aws:lambda:us-east-1:000000000000:function:ksp-esm"
	expectRecord(t, s.delivered[0], InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: arn, Condition: RecordAgeExceeded, ApproximateInvokeCount: 1},
		ResponseContext:  ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:          "1.0",
		Timestamp:        lambdaTime(start.Add(2 * time.Minute)),
		KinesisBatchInfo: s.batchInfo(0, 1, 2),
	})
	expectRecord(t, s.delivered[1], InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: arn, Condition: RecordAgeExceeded},
		Version:          "1.0",
		Timestamp:        lambdaTime(start.Add(2 * time.Minute)),
		KinesisBatchInfo: s.batchInfo(2, 2, 1),
	})
}

func TestPanicAndTimeoutAreFunctionErrors(t *testing.T) {
	s := newStream(t, 2)
	cfg := s.config()
	cfg.FunctionTimeout = time.Second
	var n atomic.Int32
	got := run(s, cfg, func(ctx context.Context, ev events.KinesisEvent) error {
		s.logInvoke(ev)
		switch n.Add(1) {
		case 1:
			panic("handler bug")
		case 2:
			<-ctx.Done() // runs past the function timeout
			return nil
		}
		return nil
	})
	expectLog(t, got, "invoke r0,r1", "invoke r0,r1", "invoke r0,r1", "checkpoint r1")
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	s := newStream(t, 4)
	cfg := s.config()
	cfg.BatchSize = 2
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var n atomic.Int32
	err := Run(ctx, cfg, func(_ context.Context, ev events.KinesisEvent) error {
		s.logInvoke(ev)
		if n.Add(1) == 2 {
			cancel() // stop the runner in the middle of the stream
			return errors.New("failed while stopping")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.store.GetLease(t.Context(), "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint.SequenceNumber != s.seqs[1] {
		t.Fatalf("persisted checkpoint %s, want r1", s.rec(l.Checkpoint.SequenceNumber))
	}
	// A new runner on the same lease store starts after r1.
	got := run(s, cfg, failing(s, 0))
	expectLog(t, got,
		"invoke r0,r1", "checkpoint r1", "invoke r2,r3", // the first runner
		"invoke r2,r3", "checkpoint r3")
}

// Lambda keeps a failing batch's retry count in the mapping's service; a
// restarted runner finds it with the lease, bisected halves included, so it
// does not start MaximumRetryAttempts afresh.
func TestRetryStateSurvivesRestart(t *testing.T) {
	s := newStream(t, 4)
	cfg := s.config()
	cfg.BatchSize = 4
	cfg.BisectBatchOnFunctionError = true
	cfg.MaximumRetryAttempts = Int(1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fail := failing(s, -1, "r2")
	var n atomic.Int32
	err := Run(ctx, cfg, func(ctx context.Context, ev events.KinesisEvent) error {
		if n.Add(1) == 4 {
			cancel() // stop once r2 alone failed once: retry 1 of 1 left
		}
		return fail(ctx, ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.store.GetLease(t.Context(), "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint.SequenceNumber != s.seqs[1] || l.PendingCheckpoint.SequenceNumber != s.seqs[3] {
		t.Fatalf("lease checkpoint %s pending %s, want r1 and r3 (the failing batch's end)", s.rec(l.Checkpoint.SequenceNumber), s.rec(l.PendingCheckpoint.SequenceNumber))
	}
	got := run(s, cfg, fail)
	expectLog(t, got,
		"invoke r0,r1,r2,r3", "invoke r0,r1", "checkpoint r1", "invoke r2,r3", "invoke r2", // the first runner
		"invoke r2", "deliver RetryAttemptsExhausted r2…r2", "checkpoint r2", // its last retry, not a fresh batch
		"invoke r3", "checkpoint r3")
	if n := s.delivered[0].RequestContext.ApproximateInvokeCount; n != 4 {
		t.Fatalf("approximateInvokeCount %d, want 4 (every invoke that held r2, both runners)", n)
	}
	l, err = s.store.GetLease(t.Context(), "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if !l.PendingCheckpoint.IsZero() || l.PendingCheckpointState != nil {
		t.Fatalf("the checkpoint left pending %v state %q", l.PendingCheckpoint, l.PendingCheckpointState)
	}
}

// A mapping on a stream consumer (enhanced fan-out) invokes, checkpoints
// and retries as one that polls.
func TestEnhancedFanOutAsPolling(t *testing.T) {
	s := newStream(t, 5)
	cfg := s.config()
	cfg.BatchSize = 5
	cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
	cfg.ConsumerOptions = append(cfg.ConsumerOptions, consumer.WithFanOut("esm"))
	got := run(s, cfg, reporting(s, []string{"r3"}))
	expectLog(t, got,
		"invoke r0,r1,r2,r3,r4", "checkpoint r2",
		"invoke r3,r4", "checkpoint r4")
}

// lowestFailure finds the lowest failed item of a partial batch response,
// the first record of an aggregate for its shared sequence number, and
// refuses an empty or unknown item identifier.
func TestLowestFailure(t *testing.T) {
	// r0, an aggregate of two (r1, r2 share sequence 2), r3.
	recs := []consumer.Record{{SequenceNumber: "1"}, {SequenceNumber: "2"}, {SequenceNumber: "2", SubSequenceNumber: 1}, {SequenceNumber: "3"}}
	resp := func(ids ...string) events.KinesisTimeWindowEventResponse {
		var r events.KinesisTimeWindowEventResponse
		for _, id := range ids {
			r.BatchItemFailures = append(r.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: id})
		}
		return r
	}
	for _, tc := range []struct {
		ids []string
		idx int
		ok  bool
	}{
		{nil, -1, true},
		{[]string{"3"}, 3, true},
		{[]string{"3", "2", "3"}, 1, true},
		{[]string{"1", "3"}, 0, true},
		{[]string{"3", ""}, 0, false},
		{[]string{"9"}, 0, false},
	} {
		if idx, ok := lowestFailure(resp(tc.ids...), recs); idx != tc.idx || ok != tc.ok {
			t.Errorf("items %q: got %d, %v; want %d, %v", tc.ids, idx, ok, tc.idx, tc.ok)
		}
	}
}
