package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/replicate"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// ReplicateConfig describes one run of the replication benchmark. Zero
// fields take the defaults named on each.
type ReplicateConfig struct {
	// Records put before the replicator starts, then replicated as fast as
	// it goes (default 100,000).
	Records int
	// Rate of the live phase: records/s put while the replicator runs, for
	// Duration (default 2,000/s for 5 s).
	Rate     int
	Duration time.Duration
	// Shards of the source and of the destination stream (default 4).
	Shards int
	// Size of each record's data in bytes (default 100).
	Size int
	// Poll is the replicator's wait between two reads of a shard at its tip
	// (default 200 ms: Kinesis allows 5 reads per second per shard).
	Poll time.Duration
	// Progress receives a line per phase (nil: none).
	Progress io.Writer
}

func (c *ReplicateConfig) setDefaults() {
	setDefault(&c.Records, 100_000)
	setDefault(&c.Rate, 2000)
	setDefault(&c.Duration, 5*time.Second)
	setDefault(&c.Shards, 4)
	setDefault(&c.Size, 100)
	setDefault(&c.Poll, 200*time.Millisecond)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first setting that cannot run.
func (c ReplicateConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Records < 1:
		return fmt.Errorf("records must be at least 1, not %d", c.Records)
	case c.Rate < 1 || c.Duration <= 0:
		return fmt.Errorf("rate %d and duration %v must be positive", c.Rate, c.Duration)
	case c.Shards < 1 || c.Shards > 500:
		return fmt.Errorf("shards must be in 1..500, not %d", c.Shards)
	case c.Size < 1 || c.Size > 1<<20-64:
		return fmt.Errorf("size must be in 1..%d bytes, not %d", 1<<20-64, c.Size)
	case c.Poll < time.Millisecond:
		return fmt.Errorf("poll must be at least 1ms, not %v", c.Poll)
	}
	return nil
}

// runReplicator is replicate.Run; tests replace it to see when it returns.
var runReplicator = replicate.Run

// ReplicateResult is one phase of the benchmark.
type ReplicateResult struct {
	Phase     string  `json:"phase"`
	Records   int     `json:"records"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"records_per_second"`
	// Lag percentiles: source arrival to destination acknowledgement.
	LagP50 time.Duration `json:"lag_p50_ns"`
	LagP99 time.Duration `json:"lag_p99_ns"`
}

// ReplicateReport is the outcome of `ksp bench replicate`.
type ReplicateReport struct {
	Shards  int               `json:"shards"`
	Size    int               `json:"size"`
	Poll    time.Duration     `json:"poll_ns"`
	Results []ReplicateResult `json:"results"`
}

// Replication phases: a backlog replicated as fast as it goes, and a live
// load at a fixed rate.
const (
	ReplicateBacklog = "backlog"
	ReplicateLive    = "live"
)

// RunReplicate starts two embedded servers (limits off) and replicates a
// stream from one to the other with replicate.Run: first a backlog (rate),
// then a live load (lag).
func RunReplicate(ctx context.Context, cfg ReplicateConfig) (*ReplicateReport, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var clients [2]*kinesis.Client
	for i := range clients {
		srv, err := server.New(server.Options{DisableLimits: true})
		if err != nil {
			return nil, err
		}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		defer srv.Close()
		clients[i] = servertest.NewClient(srv.URL(), srv.Region())
		if _, err := clients[i].CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(streamName), ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
			return nil, err
		}
		if err := servertest.WaitActive(ctx, clients[i], streamName); err != nil {
			return nil, err
		}
	}
	src, dst := clients[0], clients[1]
	p, err := producer.New(src, streamName, producer.RateLimit(0))
	if err != nil {
		return nil, err
	}
	defer p.Close(context.WithoutCancel(ctx))
	data := []byte(strings.Repeat("x", cfg.Size))

	fmt.Fprintf(cfg.Progress, "replicate: putting a backlog of %d records\n", cfg.Records)
	for i := range cfg.Records {
		if _, err := p.Put(ctx, producer.Record{PartitionKey: fmt.Sprint(i), Data: data}); err != nil {
			return nil, err
		}
	}
	if err := p.Flush(ctx); err != nil {
		return nil, err
	}

	lags := &lagSamples{}
	runCtx, stop := context.WithCancel(ctx)
	// The replicator ends before the servers and the producer close, on
	// every path: an early return stops it and waits.
	var runErr error // replicate.Run's; read once finished is closed
	finished := make(chan struct{})
	defer func() {
		stop()
		<-finished
	}()
	start := time.Now()
	go func() {
		defer close(finished)
		runErr = runReplicator(runCtx, replicate.Config{
			From: streamName, Source: src, Leases: memory.New(), To: streamName, Destination: dst,
			ConsumerOptions: []consumer.Option{consumer.WithIdleTime(cfg.Poll), consumer.WithShardSyncInterval(time.Second)},
			ProducerOptions: []producer.Option{producer.RateLimit(0)},
			Hooks:           []replicate.Hook{lags},
		})
	}()
	fmt.Fprintf(cfg.Progress, "replicate: backlog\n")
	if err := lags.waitFor(ctx, cfg.Records, finished, &runErr); err != nil {
		return nil, err
	}
	rep := &ReplicateReport{Shards: cfg.Shards, Size: cfg.Size, Poll: cfg.Poll}
	rep.Results = append(rep.Results, lags.result(ReplicateBacklog, time.Since(start)))

	fmt.Fprintf(cfg.Progress, "replicate: live, %d records/s for %v\n", cfg.Rate, cfg.Duration)
	lags.reset()
	live := int(float64(cfg.Rate) * cfg.Duration.Seconds())
	start = time.Now()
	for i := range live {
		// Paced in steps of 10 ms, the producer's batching does the rest.
		if due := start.Add(time.Duration(float64(i) / float64(cfg.Rate) * float64(time.Second))); time.Until(due) > 10*time.Millisecond {
			time.Sleep(time.Until(due))
		}
		if _, err := p.Put(ctx, producer.Record{PartitionKey: fmt.Sprint(i), Data: data}); err != nil {
			return nil, err
		}
	}
	if err := lags.waitFor(ctx, live, finished, &runErr); err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, lags.result(ReplicateLive, time.Since(start)))
	stop()
	<-finished
	if runErr != nil {
		return nil, runErr
	}
	return rep, nil
}

// lagSamples keeps every replication lag of a phase.
type lagSamples struct {
	mu   sync.Mutex // guards: lags
	lags []time.Duration
}

func (l *lagSamples) OnReplicationLag(_ string, lag time.Duration) {
	l.mu.Lock()
	l.lags = append(l.lags, lag)
	l.mu.Unlock()
}

func (l *lagSamples) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lags)
}

func (l *lagSamples) reset() {
	l.mu.Lock()
	l.lags = nil
	l.mu.Unlock()
}

// waitFor waits until n records were acknowledged, the replicator stopped
// (finished closed, *runErr its error), or ctx ended.
func (l *lagSamples) waitFor(ctx context.Context, n int, finished <-chan struct{}, runErr *error) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for l.count() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-finished:
			return fmt.Errorf("the replicator stopped early: %v", *runErr)
		case <-t.C:
		}
	}
	return nil
}

func (l *lagSamples) result(phase string, took time.Duration) ReplicateResult {
	l.mu.Lock()
	sorted := slices.Clone(l.lags)
	l.mu.Unlock()
	slices.Sort(sorted)
	return ReplicateResult{Phase: phase, Records: len(sorted), Seconds: took.Seconds(), PerSecond: float64(len(sorted)) / took.Seconds(),
		LagP50: percentile(sorted, 0.5), LagP99: percentile(sorted, 0.99)}
}

// WriteTable prints the report for people.
func (r *ReplicateReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ksp bench replicate: %d-byte records, %d shards to %d shards between two embedded servers (limits off), polling every %v\n\n", r.Size, r.Shards, r.Shards, r.Poll)
	rows := [][]string{{"phase", "records", "records/s", "lag p50", "lag p99"}}
	for _, res := range r.Results {
		rows = append(rows, []string{res.Phase, comma(float64(res.Records)), comma(res.PerSecond), res.LagP50.Round(time.Millisecond).String(), res.LagP99.Round(time.Millisecond).String()})
	}
	writeColumns(&b, rows)
	b.WriteString("\nlag: source arrival to destination acknowledgement; the backlog's includes the wait before the replicator started.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
