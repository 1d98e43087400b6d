package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// outcomeLog is a HookOutcome writing each outcome to the stream's log.
type outcomeLog struct{ s *stream }

func (o outcomeLog) OnOutcome(out Outcome) {
	cp := "-"
	if out.Checkpoint != "" {
		cp = o.s.rec(out.Checkpoint)
	}
	o.s.record(fmt.Sprintf("outcome %s records=%d settled=%d retries=%d checkpoint=%s", out.Result, out.Records, out.Settled, out.Retries, cp))
}

// invokeServer is a Lambda Invoke API on loopback answering its i-th
// invoke with answers[i] (then with an empty success), logging each event
// to s; it fails the test on an event that is not Lambda's shape.
func invokeServer(t *testing.T, s *stream, answers ...func(w http.ResponseWriter)) string {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var raw map[string]json.RawMessage
		var ev events.KinesisEvent
		if err := json.Unmarshal(body, &raw); err != nil || json.Unmarshal(body, &ev) != nil {
			t.Errorf("invoke body is not a Kinesis event: %s", body)
		}
		if len(raw) != 1 || raw["Records"] == nil || r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/f/invocations" {
			t.Errorf("invoke %s %s with keys %v; want POST of Records only", r.Method, r.URL.Path, raw)
		}
		s.logInvoke(ev)
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		if i < len(answers) {
			answers[i](w)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/2015-03-31/functions/f/invocations"
}

func TestInvokeHTTPFollowsLambdaResponses(t *testing.T) {
	s := newStream(t, 4)
	cfg := s.config()
	cfg.BatchSize = 4
	cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
	cfg.BisectBatchOnFunctionError = true
	cfg.MaximumRetryAttempts = Int(1)
	cfg.Hooks = []Hook{outcomeLog{s}}
	url := invokeServer(t, s,
		func(w http.ResponseWriter) { // a function error, as Lambda answers it
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorType":"Error","errorMessage":"boom"}`)
		},
		func(w http.ResponseWriter) {
			fmt.Fprintf(w, `{"batchItemFailures":[{"itemIdentifier":%q}]}`, s.seqs[1])
		},
		func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"batchItemFailures":`) }, // malformed
		func(w http.ResponseWriter) { _, _ = io.WriteString(w, "null") },
	)
	got := run(s, cfg, InvokeHTTP(nil, url))
	expectLog(t, got,
		"invoke r0,r1,r2,r3", "outcome Bisected records=4 settled=0 retries=0 checkpoint=-",
		"invoke r0,r1", "checkpoint r0", "outcome PartialFailure records=2 settled=1 retries=1 checkpoint=r0",
		"invoke r1", "outcome FunctionError records=1 settled=0 retries=2 checkpoint=-",
		"deliver RetryAttemptsExhausted r1…r1", "checkpoint r1", "outcome RetryAttemptsExhausted records=1 settled=1 retries=2 checkpoint=r1",
		"invoke r2,r3", "checkpoint r3", "outcome Succeeded records=2 settled=2 retries=0 checkpoint=r3")
}

func TestInvokeHTTPErrors(t *testing.T) {
	ev := events.KinesisTimeWindowEvent{KinesisEvent: events.KinesisEvent{Records: []events.KinesisEventRecord{{EventID: "e"}}}}
	windowed := ev
	windowed.ShardID = "shardId-000000000000"
	for _, c := range []struct {
		name   string // "window…": the event of a tumbling window
		answer func(w http.ResponseWriter, r *http.Request)
		want   string // in the error; "" for success
	}{
		{"window without state", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"batchItemFailures":[]}`) }, "no state property"},
		{"window empty", func(http.ResponseWriter, *http.Request) {}, "no state property"},
		{"window state", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"state":null}`) }, ""},
		{"function error", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorType":"TypeError","errorMessage":"x is undefined"}`)
		}, "Unhandled: TypeError: x is undefined"},
		{"status", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.awsgirawebservice/")
			http.Error(w, `{"Type":"User","Message":"Function not found"}`, http.StatusNotFound)
		}, "invoke answered 404 ResourceNotFoundException: Function not found"},
		{"refused", nil, "invoke failed: invoking http://"},
		{"malformed", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `"ok"`) }, "malformed response"},
		{"timeout", func(_ http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client going away
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, "context deadline exceeded"},
		{"empty", func(http.ResponseWriter, *http.Request) {}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(c.answer))
			defer srv.Close()
			if c.answer == nil {
				srv.Close() // nothing listens any more
			}
			// Only the timeout case is meant to reach its deadline; the
			// others get one that bounds a hang, as a busy machine can take
			// more than the timeout case's 200 ms for a loopback request.
			limit := 30 * time.Second
			if c.name == "timeout" {
				limit = 200 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(t.Context(), limit)
			defer cancel()
			in := ev
			if strings.HasPrefix(c.name, "window") {
				in = windowed
			}
			resp, err := InvokeHTTP(srv.Client(), srv.URL)(ctx, in)
			// The function did not run: an InvokeError, retried without
			// spending attempts; the others are function errors.
			var ie *InvokeError
			if unreached := c.name == "status" || c.name == "refused"; errors.As(err, &ie) != unreached {
				t.Fatalf("err %v (%T): InvokeError %v, want %v", err, err, !unreached, unreached)
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("err %v; want success", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err %v; want one saying %q", err, c.want)
			case len(resp.BatchItemFailures) != 0:
				t.Fatalf("response %+v; want none", resp)
			}
		})
	}
}
