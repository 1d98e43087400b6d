package bench

// The applications part of the consumer benchmark (with FanOut): several
// consuming applications read the same stream at once, with AWS's limits
// on, polling and then over enhanced fan-out.

import (
	"context"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
)

// AppsResult is what each of several applications got of one stream.
type AppsResult struct {
	FanOut  bool `json:"fan_out"`
	Apps    int  `json:"apps"`
	Records int  `json:"records"`
	// Delivered is the records each application's handler saw within
	// 10 s of the last put.
	Delivered []int         `json:"delivered"`
	P99       time.Duration `json:"worst_p99_ns"` // the highest per-application p99
}

// AllDelivered reports whether every application got every record.
func (a *AppsResult) AllDelivered() bool {
	for _, d := range a.Delivered {
		if d < a.Records {
			return false
		}
	}
	return true
}

// runApps puts at cfg.Rate for cfg.LatencyTime on a server with AWS's
// limits on (polling applications share 5 GetRecords calls/s per shard;
// each fan-out application has 2 MiB/s per shard of its own) while
// cfg.Apps applications consume it.
func runApps(ctx context.Context, cfg ConsumeConfig, fanOut bool) (*AppsResult, error) {
	srv, clients, err := startConsumeServerWith(ctx, cfg.Shards, server.Options{})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	total := max(1, int(float64(cfg.Rate)*cfg.LatencyTime.Seconds()))
	base := time.Now()
	recs := make([]*latencyRecorder, cfg.Apps)
	for i := range recs {
		recs[i] = newLatencyRecorder(base, total)
		name := fmt.Sprintf("app-%d", i)
		opts := []consumer.Option{
			consumer.WithStream(streamName), consumer.WithKinesis(clients[1]), consumer.WithLeaseStore(memory.New()),
			consumer.WithWorkerID(name), consumer.WithInitialPosition(consumer.TrimHorizon()),
			consumer.WithIdleTime(cfg.PollInterval), consumer.WithShutdownTimeout(10 * time.Second),
			consumer.WithMaxRetryBackoff(time.Second), consumer.WithHandler(recs[i].handler),
		}
		if fanOut {
			opts = append(opts, consumer.WithFanOut(name))
		}
		c, err := consumer.New(opts...)
		if err != nil {
			return nil, err
		}
		stop, wait := runConsumer(ctx, c)
		defer func() { stop(); _ = wait() }()
	}
	time.Sleep(2 * cfg.PollInterval) // let the applications take their leases
	p, err := producer.New(clients[0], streamName, producer.MaxBufferedTime(cfg.Linger))
	if err != nil {
		return nil, err
	}
	defer p.Close(context.WithoutCancel(ctx))
	mode := "polling"
	if fanOut {
		mode = "over enhanced fan-out"
	}
	fmt.Fprintf(cfg.Progress, "consume: %d applications %s, limits on: putting %d records at %d/s\n", cfg.Apps, mode, total, cfg.Rate)
	if err := putAtRate(ctx, cfg, p, base, total); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, r := range recs {
			done = done && r.seen.Load() >= int64(total)
		}
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := &AppsResult{FanOut: fanOut, Apps: cfg.Apps, Records: total}
	for _, r := range recs {
		sorted := r.sorted()
		res.Delivered = append(res.Delivered, len(sorted))
		if len(sorted) > 0 {
			res.P99 = max(res.P99, percentile(sorted, 0.99))
		}
	}
	fmt.Fprintf(cfg.Progress, "consume: %d applications %s: delivered %v of %d, worst p99 %s\n", cfg.Apps, mode, res.Delivered, total, ms(res.P99))
	return res, ctx.Err()
}
