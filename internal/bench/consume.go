package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/internal/procattr"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// The consumer benchmark measures package consumer against the embedded
// server (limits off, in-memory store) in three parts:
//
//   - drain: a stream pre-filled by the producer is drained by one worker
//     (memory lease store, TRIM_HORIZON, a handler that counts); the rate is
//     user records over the time from Run until the handler has seen them
//     all. With aggregation on (the goal) and off.
//   - latency: a producer puts records at a steady rate, each carrying its
//     put time, while one worker polls every PollInterval; latency is the
//     handler's time minus the put time.
//   - failover: two worker processes share a SQLite lease table; once both
//     hold leases one is killed with SIGKILL, and the time until the survivor
//     holds every lease is measured by polling the table.

// Goals of the consumer benchmark.
const (
	// GoalConsumeDrain is the aggregated drain rate: user records per second.
	GoalConsumeDrain = 300_000
	// GoalLatencySlack is what p99 latency may exceed the poll interval by.
	GoalLatencySlack = 50 * time.Millisecond
)

// Defaults of ConsumeConfig's durations.
const (
	DefaultDrainIdle    = time.Millisecond
	DefaultPollInterval = 200 * time.Millisecond
	DefaultLatencyTime  = 5 * time.Second
	DefaultLinger       = 10 * time.Millisecond
	DefaultFailover     = 2 * time.Second
)

// Parts of the consumer benchmark, for ConsumeConfig.Parts.
const (
	ConsumeDrain    = "drain"     // drain with aggregation on
	ConsumeDrainRaw = "drain-raw" // drain with aggregation off
	ConsumeLatency  = "latency"
	ConsumeFailover = "failover"
)

var consumeParts = []string{ConsumeDrain, ConsumeDrainRaw, ConsumeLatency, ConsumeFailover}

// ConsumeConfig describes one run of the consumer benchmark. Zero fields
// take the defaults named on each.
type ConsumeConfig struct {
	// Parts to run, always in the order drain, drain-raw, latency, failover
	// (default all of them).
	Parts []string
	// Records pre-filled and drained with aggregation on (default 1,000,000).
	Records int
	// RawRecords pre-filled and drained with aggregation off (default 200,000).
	RawRecords int
	// Shards of each stream (default 4).
	Shards int
	// Size of each record's data in bytes, at least 8 (default 100).
	Size int
	// DrainIdle is the drain worker's pause between GetRecords calls on a
	// shard (consumer.WithIdleTime; default 1ms: limits are off).
	DrainIdle time.Duration
	// PollInterval is the latency worker's pause between GetRecords calls
	// (default 200ms).
	PollInterval time.Duration
	// Rate is the records put per second in the latency part (default 2,000).
	Rate int
	// LatencyTime is how long the latency part puts (default 5s).
	LatencyTime time.Duration
	// Linger is the latency producer's MaxBufferedTime (default 10ms): it
	// is part of the measured latency.
	Linger time.Duration
	// Failover is the workers' failover time in the failover part
	// (default 2s); they renew every third of it.
	Failover time.Duration
	// WorkerCommand starts a failover worker; the worker's flags
	// (ConsumeWorkerConfig.Args) are appended. Default: this executable
	// with "bench consume worker", the hidden subcommand of `ksp bench
	// consume`.
	WorkerCommand []string
	// WorkerEnv is added to this process's environment for the workers.
	WorkerEnv []string
	// Progress receives a line per phase (nil: none), and the workers'
	// warnings.
	Progress io.Writer
}

func (c *ConsumeConfig) setDefaults() {
	if len(c.Parts) == 0 {
		c.Parts = consumeParts
	}
	setDefault(&c.Records, 1_000_000)
	setDefault(&c.RawRecords, 200_000)
	setDefault(&c.Shards, 4)
	setDefault(&c.Size, 100)
	setDefault(&c.DrainIdle, DefaultDrainIdle)
	setDefault(&c.PollInterval, DefaultPollInterval)
	setDefault(&c.Rate, 2000)
	setDefault(&c.LatencyTime, DefaultLatencyTime)
	setDefault(&c.Linger, DefaultLinger)
	setDefault(&c.Failover, DefaultFailover)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first setting that cannot run, after the defaults.
func (c ConsumeConfig) Validate() error {
	c.setDefaults()
	for _, p := range c.Parts {
		if !slices.Contains(consumeParts, p) {
			return fmt.Errorf("unknown part %q: want %s", p, strings.Join(consumeParts, ", "))
		}
	}
	switch {
	case c.Records < 1 || c.RawRecords < 1:
		return fmt.Errorf("records must be at least 1, not %d and %d", c.Records, c.RawRecords)
	case c.Shards < 1 || c.Shards > 500:
		return fmt.Errorf("shards must be in 1..500, not %d", c.Shards)
	case c.Size < 8 || c.Size > 1<<20-64:
		return fmt.Errorf("size must be in 8..%d bytes (8 hold the put time), not %d", 1<<20-64, c.Size)
	case c.DrainIdle < time.Millisecond:
		return fmt.Errorf("drain idle time must be at least 1ms, not %s", c.DrainIdle)
	case c.PollInterval < time.Millisecond:
		return fmt.Errorf("poll interval must be at least 1ms, not %s", c.PollInterval)
	case c.Rate < 1 || c.Rate > 100_000:
		return fmt.Errorf("rate must be in 1..100000 records/s, not %d", c.Rate)
	case c.LatencyTime < 100*time.Millisecond || c.LatencyTime > 10*time.Minute:
		return fmt.Errorf("latency time must be in 100ms..10m, not %s", c.LatencyTime)
	case c.Linger < 0:
		return fmt.Errorf("linger must not be negative, not %s", c.Linger)
	case c.Failover < 100*time.Millisecond || c.Failover > 5*time.Minute:
		return fmt.Errorf("failover time must be in 100ms..5m, not %s", c.Failover)
	case slices.Contains(c.Parts, ConsumeFailover) && c.Shards < 2:
		return fmt.Errorf("the failover part needs at least 2 shards, not %d", c.Shards)
	}
	return nil
}

// ConsumeReport is the outcome of `ksp bench consume`.
type ConsumeReport struct {
	CPUs     int             `json:"cpus"`
	LoadAvg  float64         `json:"load_average"`
	Shards   int             `json:"shards"`
	Size     int             `json:"record_size"`
	Drains   []DrainResult   `json:"drains,omitempty"`
	Latency  *LatencyResult  `json:"latency,omitempty"`
	Failover *FailoverResult `json:"failover,omitempty"`
	Goals    []ConsumeGoal   `json:"goals"`
}

// DrainResult is one drain of a pre-filled stream by one worker.
type DrainResult struct {
	Aggregation    bool  `json:"aggregation"`
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
	// PeakRSS is the peak growth of this process's RSS during the drain.
	PeakRSS int64 `json:"peak_rss_growth_bytes"`
}

// LatencyResult is the put-to-handler latency at a steady put rate.
type LatencyResult struct {
	Records      int           `json:"records"`
	Rate         int           `json:"records_per_second"`
	PollInterval time.Duration `json:"poll_interval_ns"`
	Linger       time.Duration `json:"producer_linger_ns"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	Max          time.Duration `json:"max_ns"`
}

// FailoverResult is the time a surviving worker took to hold every lease
// after the other was killed.
type FailoverResult struct {
	FailoverTime time.Duration `json:"failover_time_ns"`
	Renewal      time.Duration `json:"renewal_interval_ns"`
	Shards       int           `json:"shards"`
	// KilledLeases is how many leases the killed worker held.
	KilledLeases int `json:"killed_worker_leases"`
	// Took is from the SIGKILL until the lease table showed the survivor
	// owning every lease (polled every 10 ms).
	Took time.Duration `json:"took_ns"`
}

// ConsumeGoal is one target of the consumer benchmark and whether it was met.
type ConsumeGoal struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Got    string `json:"got"`
	Met    bool   `json:"met"`
}

// RunConsume runs the parts of the consumer benchmark that cfg asks for.
func RunConsume(ctx context.Context, cfg ConsumeConfig) (*ConsumeReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	// The failover workers' stderr is copied to Progress by goroutines of
	// os/exec, alongside this function's own lines.
	cfg.Progress = &lockedWriter{w: cfg.Progress}
	rep := &ConsumeReport{CPUs: runtime.NumCPU(), LoadAvg: loadAvg(), Shards: cfg.Shards, Size: cfg.Size}
	for _, part := range consumeParts {
		if !slices.Contains(cfg.Parts, part) {
			continue
		}
		switch part {
		case ConsumeDrain, ConsumeDrainRaw:
			agg := part == ConsumeDrain
			n := cfg.Records
			if !agg {
				n = cfg.RawRecords
			}
			res, err := runDrain(ctx, cfg, agg, n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", part, err)
			}
			rep.Drains = append(rep.Drains, *res)
		case ConsumeLatency:
			res, err := runLatency(ctx, cfg)
			if err != nil {
				return nil, fmt.Errorf("latency: %w", err)
			}
			rep.Latency = res
		case ConsumeFailover:
			res, err := runFailover(ctx, cfg)
			if err != nil {
				return nil, fmt.Errorf("failover: %w", err)
			}
			rep.Failover = res
		}
	}
	rep.judge()
	return rep, nil
}

// judge fills the goals of the parts that ran.
func (r *ConsumeReport) judge() {
	for _, d := range r.Drains {
		if d.Aggregation {
			r.Goals = append(r.Goals, ConsumeGoal{
				Name: "drain, aggregated (user records/s)", Target: "≥ " + comma(GoalConsumeDrain),
				Got: comma(d.PerSecond), Met: d.PerSecond >= GoalConsumeDrain,
			})
		}
	}
	if l := r.Latency; l != nil {
		want := l.PollInterval + GoalLatencySlack
		r.Goals = append(r.Goals, ConsumeGoal{
			Name: "latency p99 (poll interval + 50ms)", Target: "≤ " + ms(want), Got: ms(l.P99), Met: l.P99 <= want,
		})
	}
	if f := r.Failover; f != nil {
		want := f.FailoverTime + f.Renewal
		r.Goals = append(r.Goals, ConsumeGoal{
			Name: "failover (failover time + renewal interval)", Target: "≤ " + ms(want), Got: ms(f.Took), Met: f.Took <= want,
		})
	}
}

// startConsumeServer starts the embedded server (limits off, in-memory
// store) with one stream, and returns two clients: the producer and the
// consumer each get their own connection.
func startConsumeServer(ctx context.Context, shards int) (*server.Server, [2]*kinesis.Client, error) {
	var clients [2]*kinesis.Client
	srv, err := server.New(server.Options{DisableLimits: true})
	if err != nil {
		return nil, clients, err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return nil, clients, err
	}
	for i := range clients {
		clients[i] = servertest.NewClient(srv.URL(), srv.Region(), func(o *kinesis.Options) { o.HTTPClient = produceHTTPClient() })
	}
	_, err = clients[0].CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(streamName), ShardCount: aws.Int32(int32(shards))})
	if err == nil {
		err = servertest.WaitActive(ctx, clients[0], streamName)
	}
	if err != nil {
		srv.Close()
		return nil, clients, fmt.Errorf("creating stream %s: %w", streamName, err)
	}
	return srv, clients, nil
}

// benchKeys are the partition keys the benchmarks' records cycle through.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	return keys
}

// fill puts n records through a producer (rate limit off) from two
// goroutines and returns the user records/s and the Kinesis records put.
func fill(ctx context.Context, client *kinesis.Client, size, n int, agg bool) (float64, int64, error) {
	p, err := producer.New(client, streamName, producer.Aggregation(agg), producer.RateLimit(0))
	if err != nil {
		return 0, 0, err
	}
	keys := benchKeys(10000)
	const writers = 2
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			// The producer does not copy data: records share a buffer
			// that nobody changes.
			data := make([]byte, size)
			for i := w; i < n; i += writers {
				if _, err := p.Put(ctx, producer.Record{PartitionKey: keys[i%len(keys)], Data: data}); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Close(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, 0, firstErr
	}
	st := p.Stats()
	if st.UserRecordsPut != int64(n) {
		return 0, 0, fmt.Errorf("%d of %d records put (%d failed)", st.UserRecordsPut, n, st.UserRecordsFailed)
	}
	return float64(n) / elapsed.Seconds(), st.KinesisRecordsPut, nil
}

// runConsumer starts c.Run in a goroutine: stop ends it (a graceful
// shutdown), wait returns Run's error once it has returned.
func runConsumer(ctx context.Context, c *consumer.Consumer) (stop func(), wait func() error) {
	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(runCtx) }()
	var once sync.Once
	var err error
	return cancel, func() error {
		once.Do(func() { err = <-errc })
		return err
	}
}

// waitCount waits until *count reaches n: it fails when the count stalls
// for stallAfter, when ctx ends or when Run returns early.
func waitCount(ctx context.Context, count *atomic.Int64, n int64, stall time.Duration, runDone <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, lastAt := int64(-1), time.Now()
	for {
		got := count.Load()
		if got >= n {
			return nil
		}
		if got != last {
			last, lastAt = got, time.Now()
		} else if time.Since(lastAt) > stall {
			return fmt.Errorf("%d of %d records handled; none for %s", got, n, stall)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-runDone:
			return fmt.Errorf("consumer stopped after %d of %d records", count.Load(), n)
		case <-tick.C:
		}
	}
}

func runDrain(ctx context.Context, cfg ConsumeConfig, agg bool, n int) (*DrainResult, error) {
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
		consumer.WithStream(streamName), consumer.WithKinesis(clients[1]), consumer.WithLeaseStore(memory.New()),
		consumer.WithWorkerID("drain"), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithIdleTime(cfg.DrainIdle), consumer.WithShutdownTimeout(10*time.Second),
		consumer.WithHandler(handler),
	)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	rssBase := peers.ProcessRSS(os.Getpid())
	mem := startSampler(100*time.Millisecond, func() int64 { return max(0, peers.ProcessRSS(os.Getpid())-rssBase) })
	cpu0 := cpuTime()
	start := time.Now()
	stop, wait := runConsumer(ctx, c)
	runDone := make(chan struct{})
	go func() { _ = wait(); close(runDone) }()
	err = waitCount(ctx, &count, int64(n), stallAfter, runDone)
	cpu := cpuTime() - cpu0
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
	res := &DrainResult{
		Aggregation: agg, Records: n, KinesisRecords: kinesisRecords, FillPerSecond: fillRate, Idle: cfg.DrainIdle,
		Seconds: elapsed.Seconds(), PerSecond: float64(n) / elapsed.Seconds(), Batches: batches.Load(),
		CPUPerRecord: cpu / time.Duration(n), PeakRSS: peak,
	}
	fmt.Fprintf(cfg.Progress, "consume: drained %d user records in %.2fs (%s records/s)\n", n, res.Seconds, comma(res.PerSecond))
	return res, nil
}

// waitLeases polls store every 10 ms until cond holds for the number of
// leases per owner and in all, for at most limit.
func waitLeases(ctx context.Context, store lease.Store, limit time.Duration, cond func(owners map[string]int, total int) bool) error {
	deadline := time.Now().Add(limit)
	for {
		ls, err := store.ListLeases(ctx)
		if err == nil {
			owners := map[string]int{}
			for _, l := range ls {
				owners[l.LeaseOwner]++
			}
			if cond(owners, len(ls)) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leases not as wanted after %s (last error: %v)", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func runLatency(ctx context.Context, cfg ConsumeConfig) (*LatencyResult, error) {
	srv, clients, err := startConsumeServer(ctx, cfg.Shards)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	total := max(1, int(float64(cfg.Rate)*cfg.LatencyTime.Seconds()))
	// Put times are read on the monotonic clock, as time since base.
	base := time.Now()
	var (
		mu   sync.Mutex // guards: lats
		lats = make([]time.Duration, 0, total)
		seen atomic.Int64
	)
	handler := func(_ context.Context, recs []consumer.Record) error {
		now := time.Since(base)
		mu.Lock()
		for _, r := range recs {
			if len(r.Data) >= 8 {
				lats = append(lats, now-time.Duration(binary.BigEndian.Uint64(r.Data)))
			}
		}
		mu.Unlock()
		seen.Add(int64(len(recs)))
		return nil
	}
	store := memory.New()
	c, err := consumer.New(
		consumer.WithStream(streamName), consumer.WithKinesis(clients[1]), consumer.WithLeaseStore(store),
		consumer.WithWorkerID("latency"), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithIdleTime(cfg.PollInterval), consumer.WithShutdownTimeout(10*time.Second),
		consumer.WithHandler(handler),
	)
	if err != nil {
		return nil, err
	}
	stop, wait := runConsumer(ctx, c)
	defer func() { stop(); _ = wait() }()
	err = waitLeases(ctx, store, 30*time.Second, func(o map[string]int, _ int) bool { return o["latency"] == cfg.Shards })
	if err != nil {
		return nil, err
	}
	// Let every shard's reader make its first GetRecords call.
	time.Sleep(2 * cfg.PollInterval)

	p, err := producer.New(clients[0], streamName, producer.RateLimit(0), producer.MaxBufferedTime(cfg.Linger))
	if err != nil {
		return nil, err
	}
	defer p.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(cfg.Progress, "consume: putting %d records at %d/s; the worker polls every %s\n", total, cfg.Rate, cfg.PollInterval)
	keys := benchKeys(100)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < total; {
		due := min(total, int(time.Since(start).Seconds()*float64(cfg.Rate))+1)
		for ; i < due; i++ {
			data := make([]byte, cfg.Size)
			binary.BigEndian.PutUint64(data, uint64(time.Since(base)))
			if _, err := p.Put(ctx, producer.Record{PartitionKey: keys[i%len(keys)], Data: data}); err != nil {
				return nil, fmt.Errorf("put: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	if err := p.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	runDone := make(chan struct{})
	go func() { _ = wait(); close(runDone) }()
	if err := waitCount(ctx, &seen, int64(total), 10*time.Second+10*cfg.PollInterval, runDone); err != nil {
		return nil, err
	}
	mu.Lock()
	sorted := slices.Clone(lats)
	mu.Unlock()
	slices.Sort(sorted)
	res := &LatencyResult{
		Records: len(sorted), Rate: cfg.Rate, PollInterval: cfg.PollInterval, Linger: cfg.Linger,
		P50: percentile(sorted, 0.50), P99: percentile(sorted, 0.99), Max: sorted[len(sorted)-1],
	}
	fmt.Fprintf(cfg.Progress, "consume: latency p50 %s, p99 %s, max %s\n", ms(res.P50), ms(res.P99), ms(res.Max))
	return res, nil
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

const failoverTable = "ksp-bench-consume"

func runFailover(ctx context.Context, cfg ConsumeConfig) (*FailoverResult, error) {
	srv, _, err := startConsumeServer(ctx, cfg.Shards)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "ksp-bench-consume-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "leases.db")
	store, err := sqlite.Open(ctx, db, failoverTable)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if _, err := store.CreateTableIfNotExists(ctx); err != nil {
		return nil, err
	}
	command := cfg.WorkerCommand
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the ksp executable: %w", err)
		}
		command = []string{exe, "bench", "consume", "worker"}
	}
	// Balancing steals one lease per take round (every half failover
	// time), so allow plenty of rounds.
	settle := 30*time.Second + time.Duration(cfg.Shards)*cfg.Failover
	ids := [2]string{"w0", "w1"}
	var workers [2]*worker
	for i, id := range ids {
		wc := ConsumeWorkerConfig{
			Endpoint: srv.URL(), Region: srv.Region(), Stream: streamName, LeaseDB: db, LeaseTable: failoverTable,
			WorkerID: id, Failover: cfg.Failover, PollInterval: cfg.PollInterval, MaxRuntime: 2*settle + time.Minute,
		}
		w, err := startWorker(command, wc.Args(), cfg.WorkerEnv, cfg.Progress)
		if err != nil {
			return nil, err
		}
		workers[i] = w
		defer w.stop(cfg.Failover + 5*time.Second)
	}
	fmt.Fprintf(cfg.Progress, "consume: two worker processes (pids %d, %d) share a SQLite lease table; waiting until they split %d shards\n",
		workers[0].cmd.Process.Pid, workers[1].cmd.Process.Pid, cfg.Shards)
	half := cfg.Shards / 2
	err = waitLeases(ctx, store, settle, func(o map[string]int, total int) bool {
		return total == cfg.Shards && o[ids[0]] >= half && o[ids[1]] >= half && o[ids[0]]+o[ids[1]] == total
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for both workers to hold leases: %w", err)
	}
	res := &FailoverResult{FailoverTime: cfg.Failover, Renewal: cfg.Failover / 3, Shards: cfg.Shards}
	if ls, err := store.ListLeases(ctx); err == nil {
		for _, l := range ls {
			if l.LeaseOwner == ids[0] {
				res.KilledLeases++
			}
		}
	}
	killedAt := time.Now()
	if err := workers[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return nil, fmt.Errorf("killing worker %s: %w", ids[0], err)
	}
	err = waitLeases(ctx, store, 10*cfg.Failover+10*time.Second, func(o map[string]int, total int) bool {
		return total == cfg.Shards && o[ids[1]] == total
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the survivor to hold every lease: %w", err)
	}
	res.Took = time.Since(killedAt)
	fmt.Fprintf(cfg.Progress, "consume: killed %s (%d leases); %s held all %d after %s\n", ids[0], res.KilledLeases, ids[1], cfg.Shards, ms(res.Took))
	return res, nil
}

// worker is a failover worker child process.
type worker struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startWorker(command, args, env []string, stderr io.Writer) (*worker, error) {
	cmd := exec.Command(command[0], append(slices.Clone(command[1:]), args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.Discard
	cmd.Stderr = stderr
	// The worker dies with this process, whatever way it ends.
	procattr.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting worker %s: %w", command[0], err)
	}
	w := &worker{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(w.done) }()
	return w, nil
}

// stop asks the worker to shut down (SIGTERM) and kills it after grace.
func (w *worker) stop(grace time.Duration) {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// ConsumeWorkerConfig is one failover worker of the consumer benchmark: a
// consumer on the server at Endpoint with its leases in a SQLite file.
type ConsumeWorkerConfig struct {
	Endpoint     string
	Region       string
	Stream       string
	LeaseDB      string
	LeaseTable   string
	WorkerID     string
	Failover     time.Duration
	PollInterval time.Duration
	// MaxRuntime ends the worker should nobody stop it.
	MaxRuntime time.Duration
}

// FlagSet is what ConsumeWorkerConfig.RegisterFlags needs: both
// *flag.FlagSet and *pflag.FlagSet have it.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// RegisterFlags defines the worker's flags on fs, those Args writes.
func (c *ConsumeWorkerConfig) RegisterFlags(fs FlagSet) {
	fs.StringVar(&c.Endpoint, "endpoint", "", "Kinesis endpoint URL")
	fs.StringVar(&c.Region, "region", "us-east-1", "region given to the SDK client")
	fs.StringVar(&c.Stream, "stream", "", "stream to consume")
	fs.StringVar(&c.LeaseDB, "lease-db", "", "SQLite file of the lease table")
	fs.StringVar(&c.LeaseTable, "lease-table", "", "lease table name")
	fs.StringVar(&c.WorkerID, "worker-id", "", "this worker's id")
	fs.DurationVar(&c.Failover, "failover", 2*time.Second, "failover time")
	fs.DurationVar(&c.PollInterval, "poll-interval", 200*time.Millisecond, "pause between GetRecords calls")
	fs.DurationVar(&c.MaxRuntime, "max-runtime", 5*time.Minute, "exit after this long")
}

// Args returns the flags that give c to a worker process.
func (c ConsumeWorkerConfig) Args() []string {
	return []string{
		"--endpoint=" + c.Endpoint, "--region=" + c.Region, "--stream=" + c.Stream,
		"--lease-db=" + c.LeaseDB, "--lease-table=" + c.LeaseTable, "--worker-id=" + c.WorkerID,
		"--failover=" + c.Failover.String(), "--poll-interval=" + c.PollInterval.String(),
		"--max-runtime=" + c.MaxRuntime.String(),
	}
}

// Validate reports a missing or bad setting.
func (c ConsumeWorkerConfig) Validate() error {
	switch {
	case c.Endpoint == "" || c.Stream == "" || c.LeaseDB == "" || c.LeaseTable == "" || c.WorkerID == "":
		return errors.New("--endpoint, --stream, --lease-db, --lease-table and --worker-id are required")
	case c.Failover < 30*time.Millisecond:
		return fmt.Errorf("failover time must be at least 30ms, not %s", c.Failover)
	case c.PollInterval < time.Millisecond:
		return fmt.Errorf("poll interval must be at least 1ms, not %s", c.PollInterval)
	case c.MaxRuntime <= 0:
		return fmt.Errorf("max runtime must be positive, not %s", c.MaxRuntime)
	}
	return nil
}

// RunConsumeWorker consumes until ctx ends or MaxRuntime passes, handling
// records by dropping them; errors are logged to logw. Not warnings: the
// leases the two workers steal from each other while they balance are
// logged as lost, which is expected here.
func RunConsumeWorker(ctx context.Context, cfg ConsumeWorkerConfig, logw io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRuntime)
	defer cancel()
	store, err := sqlite.Open(ctx, cfg.LeaseDB, cfg.LeaseTable)
	if err != nil {
		return err
	}
	defer store.Close()
	client := servertest.NewClient(cfg.Endpoint, cfg.Region, func(o *kinesis.Options) { o.HTTPClient = produceHTTPClient() })
	c, err := consumer.New(
		consumer.WithStream(cfg.Stream), consumer.WithKinesis(client), consumer.WithLeaseStore(store),
		consumer.WithWorkerID(cfg.WorkerID), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithFailoverTime(cfg.Failover), consumer.WithIdleTime(cfg.PollInterval),
		consumer.WithShutdownTimeout(cfg.Failover),
		consumer.WithLogger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelError}))),
		consumer.WithHandler(func(context.Context, []consumer.Record) error { return nil }),
	)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// WriteTable prints the report for people.
func (r *ConsumeReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ksp bench consume: package consumer against the embedded server (limits off, in-memory store), %d shards, %d-byte records\n", r.Shards, r.Size)
	fmt.Fprintf(&b, "machine: %d CPUs, load average %.2f at start; CPU time and RSS include the in-process server\n", r.CPUs, r.LoadAvg)
	if len(r.Drains) > 0 {
		fmt.Fprintf(&b, "\ndrain: one worker (memory lease store, TRIM_HORIZON, a handler that counts) from Run until every user record was handled\n")
		rows := [][]string{{"aggregation", "user records", "Kinesis records", "fill rec/s", "drain rec/s", "seconds", "CPU/record", "handler calls", "RSS growth"}}
		for _, d := range r.Drains {
			rows = append(rows, []string{
				map[bool]string{true: "on", false: "off"}[d.Aggregation], comma(float64(d.Records)), comma(float64(d.KinesisRecords)),
				comma(d.FillPerSecond), comma(d.PerSecond), strconv.FormatFloat(d.Seconds, 'f', 2, 64),
				d.CPUPerRecord.String(), comma(float64(d.Batches)), "+" + mib(d.PeakRSS) + " peak",
			})
		}
		writeColumns(&b, rows)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, "\nlatency: producer.Put to handler, %s records at %s/s (producer linger %s), one worker polling every %s\n",
			comma(float64(l.Records)), comma(float64(l.Rate)), l.Linger, l.PollInterval)
		writeColumns(&b, [][]string{{"records", "p50", "p99", "max"}, {comma(float64(l.Records)), ms(l.P50), ms(l.P99), ms(l.Max)}})
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(&b, "\nfailover: two worker processes share a SQLite lease table (failover time %s, renewal every %s); one is killed with SIGKILL\n",
			f.FailoverTime, ms(f.Renewal))
		writeColumns(&b, [][]string{
			{"shards", "killed worker's leases", "survivor holds all after", "failover + renewal"},
			{strconv.Itoa(f.Shards), strconv.Itoa(f.KilledLeases), ms(f.Took), ms(f.FailoverTime + f.Renewal)},
		})
	}
	if len(r.Goals) > 0 {
		b.WriteString("\ngoals\n")
		rows := [][]string{{"goal", "target", "got", "verdict"}}
		for _, g := range r.Goals {
			rows = append(rows, []string{g.Name, g.Target, g.Got, map[bool]string{true: "met", false: "not met"}[g.Met]})
		}
		writeColumns(&b, rows)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// lockedWriter serializes the writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex // guards: w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ms renders a duration in milliseconds.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}
