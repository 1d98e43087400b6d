package esm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/ksp-project/ksp/consumer"
)

// counting is a windowed handler counting records: each invoke gets the
// state the previous invoke of its window returned; the final invoke of
// each window carries no records and the total.
func counting(s *stream) func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	return func(_ context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		count, _ := strconv.Atoi(ev.State["count"])
		window := fmt.Sprintf("window %d+%v", ev.Window.Start.Unix(), ev.Window.End.Sub(ev.Window.Start.Time))
		if ev.IsFinalInvokeForWindow {
			s.record(fmt.Sprintf("final %s count=%d early=%v records=%d shard=%s", window, count, ev.IsWindowTerminatedEarly, len(ev.Records), ev.ShardID))
			return events.KinesisTimeWindowEventResponse{}, nil
		}
		names := make([]string, len(ev.Records))
		for i, r := range ev.Records {
			names[i] = string(r.Kinesis.Data)
		}
		s.record(fmt.Sprintf("invoke %s %s count=%d", strings.Join(names, ","), window, count))
		return events.KinesisTimeWindowEventResponse{TimeWindowEventResponseProperties: events.TimeWindowEventResponseProperties{
			State: map[string]string{"count": strconv.Itoa(count + len(ev.Records))}}}, nil
	}
}

// countedWindows is what counting logs with BatchSize 1 over the stream's
// records, by their arrival times in one-second windows; the last window
// is closed early (at shard end) when lastEarly is set.
func countedWindows(s *stream, lastEarly bool) []string {
	var want []string
	var names []string
	var start int64
	flush := func(early bool) {
		for i, n := range names {
			want = append(want, fmt.Sprintf("invoke %s window %d+1s count=%d", n, start, i))
		}
		want = append(want, fmt.Sprintf("final window %d+1s count=%d early=%v records=0 shard=shardId-000000000000", start, len(names), early),
			"checkpoint "+names[len(names)-1])
		names = nil
	}
	for i, seq := range s.seqs {
		w := s.arrival[seq].Truncate(time.Second).Unix()
		if len(names) > 0 && w != start {
			flush(false)
		}
		start = w
		names = append(names, fmt.Sprint("r", i))
	}
	flush(lastEarly)
	return want
}

func TestTumblingWindowsCarryStateAndCloseAtShardEnd(t *testing.T) {
	s := newStream(t, 2)
	// The next records arrive in a later one-second window.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	s.put([]string{"k2", "k3"})
	// Close the shard, so its last window is closed early at shard end.
	s.split()
	s.put(nil) // re-read the arrival times of r2 and r3

	cfg := s.config()
	cfg.TumblingWindowInSeconds = 1
	cfg.BatchSize = 1 // two invokes per window: the state passes between them
	got := run(s, cfg, counting(s))
	want := countedWindows(s, true)
	if len(want) < 6 {
		t.Fatalf("the records fell in one window: %v", s.arrival)
	}
	expectLog(t, withoutShardEnd(got), want...)
}

// Lambda closes a window when its end passes, even when no later record
// arrives to show it.
func TestTumblingWindowClosesOnTheClock(t *testing.T) {
	for _, mode := range []string{"polling", "fan-out"} {
		t.Run(mode, func(t *testing.T) {
			s := newStream(t, 2)
			cfg := s.config()
			cfg.TumblingWindowInSeconds = 1
			cfg.BatchSize = 1
			if mode == "fan-out" { // the subscription sends nothing once the records are read
				cfg.ConsumerOptions = append(cfg.ConsumerOptions, consumer.WithFanOut("esm"))
			}
			got := run(s, cfg, counting(s))
			expectLog(t, got, countedWindows(s, false)...)
		})
	}
}

func TestTumblingWindowFinalInvokeFailureGoesToOnFailure(t *testing.T) {
	s := newStream(t, 2)
	s.split()
	cfg := s.config()
	cfg.TumblingWindowInSeconds = 900 // r0 and r1, put together, share a window
	cfg.MaximumRetryAttempts = Int(1)
	got := run(s, cfg, func(_ context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		if ev.IsFinalInvokeForWindow {
			s.record("final")
			return events.KinesisTimeWindowEventResponse{}, fmt.Errorf("cannot store the aggregate")
		}
		s.logInvoke(ev.KinesisEvent)
		return events.KinesisTimeWindowEventResponse{}, nil
	})
	expectLog(t, withoutShardEnd(got), "invoke r0,r1", "final", "final", "deliver RetryAttemptsExhausted r0…r1", "checkpoint r1")
	expectRecord(t, s.delivered[0], InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:ksp-esm", Condition: RetryAttemptsExhausted, ApproximateInvokeCount: 2},
		ResponseContext:  ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:          "1.0",
		Timestamp:        s.delivered[0].Timestamp,
		KinesisBatchInfo: s.batchInfo(0, 1, 2),
	})
}

// withoutShardEnd drops the SHARD_END checkpoint that follows the last
// record's, written unless the test stopped the runner first.
func withoutShardEnd(log []string) []string {
	if n := len(log); n > 0 && log[n-1] == "checkpoint ?SHARD_END" {
		return log[:n-1]
	}
	return log
}

// Lambda terminates a window early when its state passes 1 MB; the
// window's later records start again with empty state.
func TestTumblingWindowTerminatedEarlyWhenStateExceedsOneMegabyte(t *testing.T) {
	s := newStream(t, 3)
	s.split()
	cfg := s.config()
	cfg.TumblingWindowInSeconds = 900 // the records share a window
	cfg.BatchSize = 1
	count := counting(s)
	got := run(s, cfg, func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		resp, err := count(ctx, ev)
		if len(ev.Records) == 1 && string(ev.Records[0].Kinesis.Data) == "r0" {
			resp.State["notes"] = strings.Repeat("x", MaxWindowStateBytes) // too much to keep
		}
		return resp, err
	})
	w := s.arrival[s.seqs[0]].Truncate(900 * time.Second).Unix()
	expectLog(t, withoutShardEnd(got),
		fmt.Sprintf("invoke r0 window %d+15m0s count=0", w),
		fmt.Sprintf("final window %d+15m0s count=1 early=true records=0 shard=shardId-000000000000", w), "checkpoint r0",
		fmt.Sprintf("invoke r1 window %d+15m0s count=0", w),
		fmt.Sprintf("invoke r2 window %d+15m0s count=1", w),
		fmt.Sprintf("final window %d+15m0s count=2 early=true records=0 shard=shardId-000000000000", w), "checkpoint r2")
}
