package bench

// The drain part of the consumer benchmark: one worker reads a pre-filled
// stream to its end, twice: the first drain in the process pays for growing
// the heap and the buffers it keeps (fresh pages from the kernel), the
// second, by a new worker of another application, sees a long-running
// consumer's steady state. Both are reported.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/lease/memory"
)

// DrainResult is one drain of a pre-filled stream by one worker.
type DrainResult struct {
	Aggregation bool `json:"aggregation"`
	// Warm reports that this process drained the stream once before: its
	// heap and kept buffers are grown, as a long-running consumer's are.
	Warm           bool  `json:"warm"`
	Records        int   `json:"user_records"`
	KinesisRecords int64 `json:"kinesis_records"`
	// FillPerSecond is the producer's rate filling the stream (not timed
	// with the drain).
	FillPerSecond float64       `json:"fill_user_records_per_second"`
	Idle          time.Duration `json:"idle_ns"`
	Seconds       float64       `json:"seconds"`
	PerSecond     float64       `json:"user_records_per_second"`
	Batches       int64         `json:"handler_calls"`
	// CPUPerRecord is the process's CPU time per user record during the
	// drain; the in-process server is included.
	CPUPerRecord time.Duration `json:"cpu_ns_per_record"`
	// AllocsPerRecord counts heap allocations per user record during the
	// drain (runtime.MemStats.Mallocs), the in-process server's included.
	AllocsPerRecord float64 `json:"allocs_per_record"`
	// PeakRSS is the peak growth of this process's RSS during the drain.
	PeakRSS int64 `json:"peak_rss_growth_bytes"`
}

// runDrain fills a stream with n user records and drains it twice, cold
// then warm; the CPU profile, if any, covers the warm drain.
func runDrain(ctx context.Context, cfg ConsumeConfig, agg bool, n int) ([]DrainResult, error) {
	srv, clients, err := startConsumeServer(ctx, cfg.Shards)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	fmt.Fprintf(cfg.Progress, "consume: filling %d shards with %d records of %d bytes, aggregation %v\n", cfg.Shards, n, cfg.Size, agg)
	fillRate, kinesisRecords, err := fill(ctx, clients[0], cfg.Size, n, agg)
	if err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	fmt.Fprintf(cfg.Progress, "consume: filled at %s records/s (%d Kinesis records); draining with one worker\n", comma(fillRate), kinesisRecords)
	var res []DrainResult
	for _, warm := range []bool{false, true} {
		d, err := drainOnce(ctx, cfg, cfg.consumerClient(clients[1]), agg && warm, n)
		if err != nil {
			return nil, err
		}
		d.Aggregation, d.Warm, d.KinesisRecords, d.FillPerSecond = agg, warm, kinesisRecords, fillRate
		fmt.Fprintf(cfg.Progress, "consume: drained %d user records in %.2fs (%s records/s), %s\n", n, d.Seconds, comma(d.PerSecond), heapState(warm))
		res = append(res, *d)
	}
	return res, nil
}

func heapState(warm bool) string {
	if warm {
		return "warm"
	}
	return "cold"
}

// drainOnce drains the stream from TRIM_HORIZON with a new worker (its own
// lease store, so its own application) until it has handled n records.
func drainOnce(ctx context.Context, cfg ConsumeConfig, client *kinesis.Client, profile bool, n int) (*DrainResult, error) {
	var (
		count, batches atomic.Int64
		doneOnce       sync.Once
		doneAt         time.Time
		reached        = make(chan struct{}) // closed once doneAt is set
	)
	handler := func(_ context.Context, recs []consumer.Record) error {
		batches.Add(1)
		if count.Add(int64(len(recs))) >= int64(n) {
			doneOnce.Do(func() { doneAt = time.Now(); close(reached) })
		}
		return nil
	}
	c, err := consumer.New(
		consumer.WithStream(streamName), consumer.WithKinesis(client), consumer.WithLeaseStore(memory.New()),
		consumer.WithWorkerID("drain"), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithIdleTime(cfg.DrainIdle), consumer.WithShutdownTimeout(10*time.Second),
		consumer.WithHandler(handler),
	)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	rssBase := childproc.RSS(os.Getpid())
	mem := startSampler(100*time.Millisecond, func() int64 { return max(0, childproc.RSS(os.Getpid())-rssBase) })
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	profile = profile && cfg.CPUProfile != nil
	if profile {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			mem.stop()
			return nil, err
		}
	}
	cpu0 := cpuTime()
	start := time.Now()
	stop, wait := runConsumer(ctx, c)
	runDone := make(chan struct{})
	go func() { _ = wait(); close(runDone) }()
	err = waitCount(ctx, &count, int64(n), stallAfter, runDone)
	cpu := cpuTime() - cpu0
	if profile {
		pprof.StopCPUProfile()
	}
	runtime.ReadMemStats(&m1)
	peak := mem.stop()
	stop()
	runErr := wait()
	if err != nil {
		return nil, errors.Join(err, runErr)
	}
	if runErr != nil {
		return nil, runErr
	}
	<-reached // the handler that reached n is setting doneAt
	elapsed := doneAt.Sub(start)
	return &DrainResult{
		Records: n, Idle: cfg.DrainIdle, Seconds: elapsed.Seconds(), PerSecond: float64(n) / elapsed.Seconds(), Batches: batches.Load(),
		CPUPerRecord: cpu / time.Duration(n), AllocsPerRecord: float64(m1.Mallocs-m0.Mallocs) / float64(n), PeakRSS: peak,
	}, nil
}
