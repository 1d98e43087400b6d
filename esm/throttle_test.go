package esm

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Lambda retries invokes that never reached the function (throttles,
// service errors) without spending retry attempts; function errors spend
// them.
func TestThrottlesAndServiceErrorsSpendNoRetries(t *testing.T) {
	s := newStream(t, 2)
	cfg := s.config()
	cfg.BatchSize = 1
	cfg.MaximumRetryAttempts = Int(0)
	cfg.Hooks = []Hook{outcomeLog{s}}
	apiError := func(status int, kind, body string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("X-Amzn-ErrorType", kind)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	url := invokeServer(t, s,
		apiError(http.StatusTooManyRequests, "TooManyRequestsException", `{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}`),
		apiError(http.StatusTooManyRequests, "TooManyRequestsException", `{"Type":"User","message":"Rate Exceeded."}`),
		apiError(http.StatusInternalServerError, "ServiceException", `{"Type":"Service","message":"internal error"}`),
		apiError(http.StatusBadGateway, "ResourceNotReadyException", `{"Type":"Service","message":"not ready"}`),
		func(w http.ResponseWriter) { _, _ = io.WriteString(w, "null") }, // r0 handled
		func(w http.ResponseWriter) { // r1: a function error, the one attempt allowed
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorType":"Error","errorMessage":"boom"}`)
		},
	)
	got := run(s, cfg, InvokeHTTP(nil, url))
	expectLog(t, got,
		"invoke r0", "outcome Throttled records=1 settled=0 retries=0 checkpoint=-",
		"invoke r0", "outcome Throttled records=1 settled=0 retries=0 checkpoint=-",
		"invoke r0", "outcome InvokeError records=1 settled=0 retries=0 checkpoint=-",
		"invoke r0", "outcome InvokeError records=1 settled=0 retries=0 checkpoint=-",
		"invoke r0", "checkpoint r0", "outcome Succeeded records=1 settled=1 retries=0 checkpoint=r0",
		"invoke r1", "outcome FunctionError records=1 settled=0 retries=1 checkpoint=-",
		"deliver RetryAttemptsExhausted r1…r1", "checkpoint r1", "outcome RetryAttemptsExhausted records=1 settled=1 retries=1 checkpoint=r1")
	expectRecord(t, s.delivered[0], InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:ksp-esm", Condition: RetryAttemptsExhausted, ApproximateInvokeCount: 1},
		ResponseContext:  ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:          "1.0",
		Timestamp:        s.delivered[0].Timestamp,
		KinesisBatchInfo: s.batchInfo(1, 1, 1),
	})
}

// A function throttled for good: Lambda retries until the records are too
// old, then gives them up as never invoked.
func TestThrottledUntilRecordAgeExceeded(t *testing.T) {
	s := newStream(t, 2)
	var clock atomic.Pointer[time.Time]
	start := s.arrival[s.seqs[1]].Add(time.Second)
	clock.Store(&start)
	cfg := s.config()
	cfg.MaximumRecordAgeInSeconds = Int(60)
	cfg.MaximumRetryAttempts = Int(0)
	cfg.Now = func() time.Time { return *clock.Load() }
	cfg.Hooks = []Hook{outcomeLog{s}}
	var n atomic.Int32
	got := run(s, cfg, func(_ context.Context, ev events.KinesisEvent) error {
		s.logInvoke(ev)
		if n.Add(1) == 3 { // a minute later
			later := start.Add(61 * time.Second)
			clock.Store(&later)
		}
		return &InvokeError{StatusCode: http.StatusTooManyRequests, Type: "TooManyRequestsException", Message: "Rate Exceeded."}
	})
	expectLog(t, got,
		"invoke r0,r1", "outcome Throttled records=2 settled=0 retries=0 checkpoint=-",
		"invoke r0,r1", "outcome Throttled records=2 settled=0 retries=0 checkpoint=-",
		"invoke r0,r1", "outcome Throttled records=2 settled=0 retries=0 checkpoint=-",
		"deliver RecordAgeExceeded r0…r1", "checkpoint r1", "outcome RecordAgeExceeded records=2 settled=2 retries=0 checkpoint=r1")
	expectRecord(t, s.delivered[0], InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:ksp-esm", Condition: RecordAgeExceeded},
		Version:          "1.0",
		Timestamp:        lambdaTime(start.Add(61 * time.Second)),
		KinesisBatchInfo: s.batchInfo(0, 1, 2),
	})
}
