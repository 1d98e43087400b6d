package esm

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func batchOf(names ...string) events.KinesisEvent {
	var ev events.KinesisEvent
	for _, n := range names {
		ev.Records = append(ev.Records, events.KinesisEventRecord{Kinesis: events.KinesisRecord{SequenceNumber: "seq-" + n, Data: []byte(n)}})
	}
	return ev
}

func ids(resp events.KinesisEventResponse) []string {
	var out []string
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

func TestProcessBatchReportsFailedRecords(t *testing.T) {
	var seen []string
	fn := func(_ context.Context, r events.KinesisEventRecord) error {
		seen = append(seen, string(r.Kinesis.Data))
		switch string(r.Kinesis.Data) {
		case "b":
			return errors.New("bad b")
		case "d":
			panic("bad d")
		}
		return nil
	}
	resp := ProcessBatch(t.Context(), batchOf("a", "b", "c", "d", "e"), fn)
	if got := ids(resp); !slices.Equal(got, []string{"seq-b", "seq-d"}) {
		t.Fatalf("failures %q", got)
	}
	if !slices.Equal(seen, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("processed %q", seen)
	}

	seen = nil
	resp = ProcessBatch(t.Context(), batchOf("a", "b", "c", "d", "e"), fn, StopAtFirstFailure())
	if got := ids(resp); !slices.Equal(got, []string{"seq-b", "seq-c", "seq-d", "seq-e"}) {
		t.Fatalf("stop at first failure: failures %q", got)
	}
	if !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("stop at first failure: processed %q", seen)
	}

	resp = ProcessBatch(t.Context(), batchOf("a"), fn)
	if resp.BatchItemFailures == nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("a success answers %+v, want an empty list", resp)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got := ids(ProcessBatch(ctx, batchOf("a", "c"), fn)); !slices.Equal(got, []string{"seq-a", "seq-c"}) {
		t.Fatalf("after ctx ended: failures %q", got)
	}
}

// With stop-at-first-failure, a record after a failed one is never handled
// before it, across Lambda's retry.
func TestProcessBatchStopAtFirstFailureUnderRun(t *testing.T) {
	s := newStream(t, 5)
	cfg := s.config()
	cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
	var handled []string
	failedOnce := false
	got := run(s, cfg, func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		s.logInvoke(ev)
		return ProcessBatch(ctx, ev, func(_ context.Context, r events.KinesisEventRecord) error {
			if string(r.Kinesis.Data) == "r1" && !failedOnce {
				failedOnce = true
				handled = append(handled, "r1 failed")
				return errors.New("r1 fails once")
			}
			handled = append(handled, string(r.Kinesis.Data))
			return nil
		}, StopAtFirstFailure()), nil
	})
	expectLog(t, got, "invoke r0,r1,r2,r3,r4", "checkpoint r0", "invoke r1,r2,r3,r4", "checkpoint r4")
	if want := "r0,r1 failed,r1,r2,r3,r4"; strings.Join(handled, ",") != want {
		t.Fatalf("handled %q, want %s", handled, want)
	}
}
