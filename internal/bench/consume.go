package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// The consumer benchmark measures package consumer against the embedded
// server (limits off, in-memory store) in three parts:
//
//   - drain: a stream pre-filled by the producer is drained by one worker
//     (memory lease store, TRIM_HORIZON, a handler that counts); the rate is
//     user records over the time from Run until the handler has seen them
//     all. With aggregation on (the goal) and off; each twice, cold (the
//     first drain in the process) and warm (the steady state).
//   - latency: a producer puts records at a steady rate, each carrying its
//     put time, while one worker polls every PollInterval; latency is the
//     handler's time minus the put time.
//   - failover: two worker processes share a SQLite lease table; once both
//     hold leases one is killed with SIGKILL, and the time until the survivor
//     holds every lease is measured by polling the table.

// Goals of the consumer benchmark.
const (
	// GoalConsumeDrain is the aggregated drain rate: user records per second.
	GoalConsumeDrain = 1_500_000
	// GoalLatencySlack is what p99 latency may exceed the poll interval by.
	GoalLatencySlack = 20 * time.Millisecond
	// GoalFanOutLatency is the p99 put-to-handler latency over enhanced fan-out.
	GoalFanOutLatency = 20 * time.Millisecond
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
	// (default all of them, or none with MultiLang).
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
	// FanOut measures the latency part a second time with the worker on
	// enhanced fan-out (consumer.WithFanOut) instead of polling, at the same
	// rate, and reports both (default off).
	FanOut bool
	// Apps is how many applications consume the stream at once in the
	// applications part, which runs with FanOut (default 5).
	Apps int
	// Failover is the workers' failover time in the failover part
	// (default 2s); they renew every third of it.
	Failover time.Duration
	// MultiLang runs the multilang part (ConsumeMultiLang): a no-op aws-kcl
	// Node.js processor under package multilang against the same no-op
	// processor in Go (default off; it needs node).
	MultiLang bool
	// MultiLangRecords are drained by each side of the multilang part
	// (default 100,000).
	MultiLangRecords int
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
	// CPUProfile receives a pprof CPU profile of the warm aggregated drain
	// (nil: none): the drain itself, not the fill.
	CPUProfile io.Writer
	// CBOR has the drain and latency workers' GetRecords speak CBOR
	// (sdkhttp.FastCodecsCBOR) instead of JSON (default off).
	CBOR bool
}

// consumerClient is the client the drain and latency workers use: c, or
// c speaking GetRecords in CBOR.
func (c *ConsumeConfig) consumerClient(k *kinesis.Client) *kinesis.Client {
	if !c.CBOR {
		return k
	}
	return kinesis.New(k.Options(), sdkhttp.FastCodecsCBOR)
}

func (c *ConsumeConfig) setDefaults() {
	if len(c.Parts) == 0 && !c.MultiLang {
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
	setDefault(&c.Apps, 5)
	setDefault(&c.MultiLangRecords, 100_000)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first setting that cannot run, after the defaults.
func (c ConsumeConfig) Validate() error {
	c.setDefaults()
	for _, p := range c.Parts {
		if !slices.Contains(consumeParts, p) {
			return fmt.Errorf("unknown part %q: want %s (or --multilang)", p, strings.Join(consumeParts, ", "))
		}
	}
	switch {
	case c.Records < 1 || c.RawRecords < 1 || c.MultiLangRecords < 1:
		return fmt.Errorf("records must be at least 1, not %d, %d and %d", c.Records, c.RawRecords, c.MultiLangRecords)
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
	case c.Apps < 1 || c.Apps > 20:
		return fmt.Errorf("applications must be in 1..20 (a stream's limit of fan-out consumers), not %d", c.Apps)
	case c.Failover < 100*time.Millisecond || c.Failover > 5*time.Minute:
		return fmt.Errorf("failover time must be in 100ms..5m, not %s", c.Failover)
	case slices.Contains(c.Parts, ConsumeFailover) && c.Shards < 2:
		return fmt.Errorf("the failover part needs at least 2 shards, not %d", c.Shards)
	}
	return nil
}

// ConsumeReport is the outcome of `ksp bench consume`.
type ConsumeReport struct {
	CPUs    int     `json:"cpus"`
	LoadAvg float64 `json:"load_average"`
	Shards  int     `json:"shards"`
	// Wire is the drain and latency workers' GetRecords format: JSON or CBOR.
	Wire    string         `json:"get_records_wire"`
	Size    int            `json:"record_size"`
	Drains  []DrainResult  `json:"drains,omitempty"`
	Latency *LatencyResult `json:"latency,omitempty"`
	// FanOutLatency is the latency part over enhanced fan-out (with FanOut).
	FanOutLatency *LatencyResult `json:"fan_out_latency,omitempty"`
	// Apps are the applications part polling and over fan-out (with FanOut).
	Apps     []AppsResult    `json:"apps,omitempty"`
	Failover *FailoverResult `json:"failover,omitempty"`
	// MultiLang is the multilang part (with MultiLang).
	MultiLang *MultiLangResult `json:"multilang,omitempty"`
	Goals     []ConsumeGoal    `json:"goals"`
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
	rep := &ConsumeReport{CPUs: runtime.NumCPU(), LoadAvg: loadAvg(), Shards: cfg.Shards, Size: cfg.Size, Wire: "JSON"}
	if cfg.CBOR {
		rep.Wire = "CBOR"
	}
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
			rep.Drains = append(rep.Drains, res...)
		case ConsumeLatency:
			res, err := runLatency(ctx, cfg, false)
			if err != nil {
				return nil, fmt.Errorf("latency: %w", err)
			}
			rep.Latency = res
			if cfg.FanOut {
				if rep.FanOutLatency, err = runLatency(ctx, cfg, true); err != nil {
					return nil, fmt.Errorf("latency over fan-out: %w", err)
				}
				for _, fanOut := range []bool{false, true} {
					res, err := runApps(ctx, cfg, fanOut)
					if err != nil {
						return nil, fmt.Errorf("applications: %w", err)
					}
					rep.Apps = append(rep.Apps, *res)
				}
			}
		case ConsumeFailover:
			res, err := runFailover(ctx, cfg)
			if err != nil {
				return nil, fmt.Errorf("failover: %w", err)
			}
			rep.Failover = res
		}
	}
	if cfg.MultiLang {
		res, err := runMultiLang(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("multilang: %w", err)
		}
		rep.MultiLang = res
	}
	rep.judge()
	return rep, nil
}

// judge fills the goals of the parts that ran.
func (r *ConsumeReport) judge() {
	for _, d := range r.Drains {
		if d.Aggregation {
			r.Goals = append(r.Goals, ConsumeGoal{
				Name: "drain, aggregated, " + heapState(d.Warm) + " (user records/s)", Target: "≥ " + comma(GoalConsumeDrain),
				Got: comma(d.PerSecond), Met: d.PerSecond >= GoalConsumeDrain,
			})
		}
	}
	if l := r.Latency; l != nil {
		want := l.PollInterval + GoalLatencySlack
		r.Goals = append(r.Goals, ConsumeGoal{
			Name: "latency p99 (poll interval + " + GoalLatencySlack.String() + ")", Target: "≤ " + ms(want), Got: ms(l.P99), Met: l.P99 <= want,
		})
	}
	if l := r.FanOutLatency; l != nil {
		r.Goals = append(r.Goals, ConsumeGoal{
			Name: "latency p99 over fan-out", Target: "≤ " + ms(GoalFanOutLatency), Got: ms(l.P99), Met: l.P99 <= GoalFanOutLatency,
		})
	}
	for _, a := range r.Apps {
		if a.FanOut {
			r.Goals = append(r.Goals, ConsumeGoal{
				Name: fmt.Sprintf("%d fan-out applications each get every record", a.Apps), Target: comma(float64(a.Records)) + " each",
				Got: fmt.Sprint(a.Delivered), Met: a.AllDelivered(),
			})
		}
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
	return startConsumeServerWith(ctx, shards, server.Options{DisableLimits: true})
}

// startConsumeServerWith is startConsumeServer with the server's options.
func startConsumeServerWith(ctx context.Context, shards int, opts server.Options) (*server.Server, [2]*kinesis.Client, error) {
	var clients [2]*kinesis.Client
	srv, err := server.New(opts)
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
	start := time.Now()
	if err := putAll(ctx, p, benchKeys(10000), n, 2, size); err != nil {
		return 0, 0, err
	}
	return float64(n) / time.Since(start).Seconds(), p.Stats().KinesisRecordsPut, nil
}

// putAll puts n records of size bytes through p from writers goroutines,
// cycling through keys, then closes p; it fails unless every record was put.
// Records share one data buffer per writer, starting with the writer's
// number: the producer does not copy data, and the benchmarks measure the
// producer, not the caller.
func putAll(ctx context.Context, p *producer.Producer, keys []string, n, writers, size int) error {
	return putAllWith(ctx, p, APIPut, keys, n, writers, size)
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

// WriteTable prints the report for people.
func (r *ConsumeReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ksp bench consume: package consumer against the embedded server (limits off, in-memory store), %d shards, %d-byte records, GetRecords in %s\n", r.Shards, r.Size, r.Wire)
	fmt.Fprintf(&b, "machine: %d CPUs, load average %.2f at start; CPU time (rusage of this process), allocations and RSS include the in-process server\n", r.CPUs, r.LoadAvg)
	if len(r.Drains) > 0 {
		fmt.Fprintf(&b, "\ndrain: one worker (memory lease store, TRIM_HORIZON, a handler that counts) from Run until every user record was handled;\n"+
			"cold: the first drain in this process; warm: a new worker drains the stream again (heap and kept buffers grown, a long-running consumer's steady state)\n")
		rows := [][]string{{"aggregation", "heap", "user records", "Kinesis records", "fill rec/s", "drain rec/s", "seconds", "CPU/record", "allocs/record", "handler calls", "RSS growth"}}
		for _, d := range r.Drains {
			rows = append(rows, []string{
				map[bool]string{true: "on", false: "off"}[d.Aggregation], heapState(d.Warm), comma(float64(d.Records)), comma(float64(d.KinesisRecords)),
				comma(d.FillPerSecond), comma(d.PerSecond), strconv.FormatFloat(d.Seconds, 'f', 2, 64),
				d.CPUPerRecord.String(), strconv.FormatFloat(d.AllocsPerRecord, 'f', 1, 64), comma(float64(d.Batches)), "+" + mib(d.PeakRSS) + " peak",
			})
		}
		writeColumns(&b, rows)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, "\nlatency: producer.Put to handler, %s records at %s/s (producer linger %s), one worker polling every %s\n",
			comma(float64(l.Records)), comma(float64(l.Rate)), l.Linger, l.PollInterval)
		rows := [][]string{{"retrieval", "records", "p50", "p99", "max"}, {"polling", comma(float64(l.Records)), ms(l.P50), ms(l.P99), ms(l.Max)}}
		if f := r.FanOutLatency; f != nil {
			rows = append(rows, []string{"fan-out", comma(float64(f.Records)), ms(f.P50), ms(f.P99), ms(f.Max)})
		}
		writeColumns(&b, rows)
	}
	if len(r.Apps) > 0 {
		fmt.Fprintf(&b, "\napplications: %d consume the stream at once with AWS limits on (polling ones share 5 GetRecords/s per shard)\n", r.Apps[0].Apps)
		rows := [][]string{{"retrieval", "records", "delivered per application", "worst p99"}}
		for _, a := range r.Apps {
			mode := "polling"
			if a.FanOut {
				mode = "fan-out"
			}
			rows = append(rows, []string{mode, comma(float64(a.Records)), fmt.Sprint(a.Delivered), ms(a.P99)})
		}
		writeColumns(&b, rows)
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(&b, "\nfailover: two worker processes share a SQLite lease table (failover time %s, renewal every %s); one is killed with SIGKILL\n",
			f.FailoverTime, ms(f.Renewal))
		writeColumns(&b, [][]string{
			{"shards", "killed worker's leases", "survivor holds all after", "failover + renewal"},
			{strconv.Itoa(f.Shards), strconv.Itoa(f.KilledLeases), ms(f.Took), ms(f.FailoverTime + f.Renewal)},
		})
	}
	if r.MultiLang != nil {
		r.MultiLang.writeTable(&b)
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
