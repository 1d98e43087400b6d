package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// consumeWorkerEnv makes the test binary a failover worker of
// TestRunConsumeSmall instead of running tests.
const consumeWorkerEnv = "KSP_BENCH_CONSUME_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(consumeWorkerEnv) == "1" {
		os.Exit(consumeWorkerMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func consumeWorkerMain(args []string) int {
	var cfg ConsumeWorkerConfig
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := RunConsumeWorker(context.Background(), cfg, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

func TestRunConsumeSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := RunConsume(ctx, ConsumeConfig{
		Records: 5000, RawRecords: 1000, Shards: 2,
		PollInterval: 50 * time.Millisecond, Rate: 500, LatencyTime: 400 * time.Millisecond,
		Failover:      time.Second,
		WorkerCommand: []string{os.Args[0]}, WorkerEnv: []string{consumeWorkerEnv + "=1"},
		Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, &progress)
	}
	if len(rep.Drains) != 4 || !rep.Drains[0].Aggregation || !rep.Drains[1].Aggregation || rep.Drains[2].Aggregation || rep.Drains[3].Aggregation ||
		rep.Drains[0].Warm || !rep.Drains[1].Warm || rep.Drains[2].Warm || !rep.Drains[3].Warm {
		t.Fatalf("drains %+v", rep.Drains)
	}
	for _, d := range rep.Drains {
		if d.PerSecond <= 0 || d.Batches < 1 || d.KinesisRecords < 1 || d.KinesisRecords > int64(d.Records) ||
			d.CPUPerRecord <= 0 || d.AllocsPerRecord <= 0 {
			t.Errorf("drain %+v", d)
		}
	}
	if rep.Drains[0].KinesisRecords >= int64(rep.Drains[0].Records) {
		t.Errorf("aggregated drain read %d Kinesis records for %d user records", rep.Drains[0].KinesisRecords, rep.Drains[0].Records)
	}
	l := rep.Latency
	if l == nil || l.Records != 200 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
		t.Errorf("latency %+v", l)
	}
	f := rep.Failover
	if f == nil || f.KilledLeases != 1 || f.Shards != 2 || f.Took <= 0 || f.Renewal != f.FailoverTime/3 {
		t.Errorf("failover %+v", f)
	}
	if len(rep.Goals) != 4 || !strings.Contains(rep.Goals[0].Name, "cold") || !strings.Contains(rep.Goals[1].Name, "warm") {
		t.Errorf("goals %+v", rep.Goals)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"drain rec/s", "p99", "survivor holds all after", "allocs/record", "CPU/record", "≥ 1,500,000", "≤ 70.0 ms", "≤ 1333.3 ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, &out)
		}
	}
	t.Logf("\n%s", &out)
}

func TestConsumeConfigValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []ConsumeConfig{
		{Parts: []string{"nope"}},
		{Size: 4},
		{Shards: 1, Parts: []string{ConsumeFailover}},
		{Failover: time.Millisecond},
		{Rate: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (ConsumeConfig{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	var w ConsumeWorkerConfig
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	w.RegisterFlags(fs)
	want := ConsumeWorkerConfig{Endpoint: "http://x", Region: "r", Stream: "s", LeaseDB: "/d", LeaseTable: "t", WorkerID: "w",
		Failover: 3 * time.Second, PollInterval: time.Millisecond, MaxRuntime: time.Minute}
	if err := fs.Parse(want.Args()); err != nil {
		t.Fatal(err)
	}
	if w != want {
		t.Errorf("flags round trip: got %+v, want %+v", w, want)
	}
}

// TestConsumeLatencyFanOut runs the latency part polling and over enhanced
// fan-out in one run and reports both, then several applications at once
// with limits on, where every fan-out application gets every record.
func TestConsumeLatencyFanOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := RunConsume(ctx, ConsumeConfig{
		Parts: []string{ConsumeLatency}, FanOut: true, Shards: 2, Apps: 2,
		PollInterval: 50 * time.Millisecond, Rate: 500, LatencyTime: 400 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*LatencyResult{rep.Latency, rep.FanOutLatency} {
		if l == nil || l.Records != 200 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
			t.Fatalf("latency %+v", l)
		}
	}
	if rep.Latency.FanOut || !rep.FanOutLatency.FanOut {
		t.Fatalf("retrieval modes: polling %v, fan-out %v", rep.Latency.FanOut, rep.FanOutLatency.FanOut)
	}
	if len(rep.Apps) != 2 || rep.Apps[0].FanOut || !rep.Apps[1].FanOut || len(rep.Apps[1].Delivered) != 2 {
		t.Fatalf("applications %+v", rep.Apps)
	}
	if !rep.Apps[1].AllDelivered() {
		t.Fatalf("fan-out applications got %v of %d records", rep.Apps[1].Delivered, rep.Apps[1].Records)
	}
	if len(rep.Goals) != 3 || rep.Goals[1].Name != "latency p99 over fan-out" || !rep.Goals[2].Met {
		t.Fatalf("goals %+v", rep.Goals)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(strings.Split(out.String(), "\n"), func(l string) bool {
		return strings.HasPrefix(l, "fan-out") && strings.Fields(l)[1] == "200"
	}) {
		t.Fatalf("the table has no fan-out row:\n%s", &out)
	}
}

// BenchmarkDrain drains b.N pre-filled user records with one worker, with
// aggregation on and off, for CPU and allocation profiles of the polling
// reader, deaggregation and delivery (go test -bench Drain -cpuprofile).
// The fill is not part of the reported CPU and allocations, though it is
// in the profiles. The metrics are the warm drain's (the second in the
// process), cold-cpu-ns/record the first's.
func BenchmarkDrain(b *testing.B) {
	for _, agg := range []bool{true, false} {
		b.Run(map[bool]string{true: "aggregated", false: "raw"}[agg], func(b *testing.B) {
			cfg := ConsumeConfig{Shards: 4}
			cfg.setDefaults()
			res, err := runDrain(context.Background(), cfg, agg, max(b.N, 1000))
			if err != nil {
				b.Fatal(err)
			}
			cold, warm := res[0], res[1]
			b.ReportMetric(float64(warm.CPUPerRecord.Nanoseconds()), "cpu-ns/record")
			b.ReportMetric(warm.AllocsPerRecord, "allocs/record")
			b.ReportMetric(float64(cold.CPUPerRecord.Nanoseconds()), "cold-cpu-ns/record")
		})
	}
}
