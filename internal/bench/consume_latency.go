package bench

// The latency part of the consumer benchmark: put-to-handler latency at a
// steady put rate.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/producer"
)

// LatencyResult is the put-to-handler latency at a steady put rate.
type LatencyResult struct {
	Records      int           `json:"records"`
	Rate         int           `json:"records_per_second"`
	PollInterval time.Duration `json:"poll_interval_ns"`
	Linger       time.Duration `json:"producer_linger_ns"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	Max          time.Duration `json:"max_ns"`
	FanOut       bool          `json:"fan_out"`
}

// runLatency measures put-to-handler latency with one worker polling or,
// with fanOut, subscribed over enhanced fan-out.
func runLatency(ctx context.Context, cfg ConsumeConfig, fanOut bool) (*LatencyResult, error) {
	srv, clients, err := startConsumeServer(ctx, cfg.Shards)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	total := max(1, int(float64(cfg.Rate)*cfg.LatencyTime.Seconds()))
	// Put times are read on the monotonic clock, as time since base.
	base := time.Now()
	rec := newLatencyRecorder(base, total)
	store := memory.New()
	opts := []consumer.Option{
		consumer.WithStream(streamName), consumer.WithKinesis(cfg.consumerClient(clients[1])), consumer.WithLeaseStore(store),
		consumer.WithWorkerID("latency"), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithIdleTime(cfg.PollInterval), consumer.WithShutdownTimeout(10 * time.Second),
		consumer.WithHandler(rec.handler),
	}
	mode := "the worker polls every " + cfg.PollInterval.String()
	if fanOut {
		opts = append(opts, consumer.WithFanOut("latency"))
		mode = "the worker subscribes over enhanced fan-out"
	}
	c, err := consumer.New(opts...)
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
	fmt.Fprintf(cfg.Progress, "consume: putting %d records at %d/s; %s\n", total, cfg.Rate, mode)
	if err := putAtRate(ctx, cfg, p, base, total); err != nil {
		return nil, err
	}
	runDone := make(chan struct{})
	go func() { _ = wait(); close(runDone) }()
	if err := waitCount(ctx, &rec.seen, int64(total), 10*time.Second+10*cfg.PollInterval, runDone); err != nil {
		return nil, err
	}
	sorted := rec.sorted()
	res := &LatencyResult{
		Records: len(sorted), Rate: cfg.Rate, PollInterval: cfg.PollInterval, Linger: cfg.Linger,
		P50: percentile(sorted, 0.50), P99: percentile(sorted, 0.99), Max: sorted[len(sorted)-1], FanOut: fanOut,
	}
	fmt.Fprintf(cfg.Progress, "consume: latency p50 %s, p99 %s, max %s\n", ms(res.P50), ms(res.P99), ms(res.Max))
	return res, nil
}

// latencyRecorder collects the put-to-handler latency of records whose
// data starts with their put time (as time since base).
type latencyRecorder struct {
	base time.Time
	seen atomic.Int64
	mu   sync.Mutex // guards: lats
	lats []time.Duration
}

func newLatencyRecorder(base time.Time, expect int) *latencyRecorder {
	return &latencyRecorder{base: base, lats: make([]time.Duration, 0, expect)}
}

func (l *latencyRecorder) handler(_ context.Context, recs []consumer.Record) error {
	now := time.Since(l.base)
	l.mu.Lock()
	for _, r := range recs {
		if len(r.Data) >= 8 {
			l.lats = append(l.lats, now-time.Duration(binary.BigEndian.Uint64(r.Data)))
		}
	}
	l.mu.Unlock()
	l.seen.Add(int64(len(recs)))
	return nil
}

// sorted returns the latencies so far, sorted.
func (l *latencyRecorder) sorted() []time.Duration {
	l.mu.Lock()
	out := slices.Clone(l.lats)
	l.mu.Unlock()
	slices.Sort(out)
	return out
}

// putAtRate puts total records at cfg.Rate, each carrying its put time as
// time since base, and flushes.
func putAtRate(ctx context.Context, cfg ConsumeConfig, p *producer.Producer, base time.Time, total int) error {
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
				return fmt.Errorf("put: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
