package bench

// The multilang part of the consumer benchmark: user records/s through the
// MultiLangDaemon of `ksp kcl` (package multilang) to a no-op record
// processor written against the aws-kcl npm package, against the same
// consumer with the same no-op processor in Go.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/multilang"
)

// ConsumeMultiLang is the multilang part, run only when asked for (it needs
// node and the aws-kcl npm package).
const ConsumeMultiLang = "multilang"

// noopNodeProcessor does nothing with the records but checkpoints each
// batch, as most processors do.
const noopNodeProcessor = `'use strict';
require('aws-kcl')({
  initialize: function (input, done) { done(); },
  processRecords: function (input, done) { input.checkpointer.checkpoint(function () { done(); }); },
  leaseLost: function (input, done) { done(); },
  shardEnded: function (input, done) { input.checkpointer.checkpoint(function () { done(); }); },
  shutdownRequested: function (input, done) { input.checkpointer.checkpoint(function () { done(); }); },
}).run();
`

// MultiLangResult compares the MultiLang path with the Go consumer.
type MultiLangResult struct {
	Records int `json:"user_records"`
	// Go and Node are the drains of the same pre-filled stream by one
	// worker: a no-op Go RecordProcessor, and a no-op aws-kcl processor
	// behind the MultiLang protocol (one node process per shard).
	Go   DrainRate `json:"go"`
	Node DrainRate `json:"node"`
	// Ratio is Node's records/s over Go's.
	Ratio float64 `json:"node_over_go"`
}

// DrainRate is one timed drain.
type DrainRate struct {
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"user_records_per_second"`
}

// countHook counts the records processed, for both drains.
type countHook struct{ n atomic.Int64 }

func (h *countHook) OnRecordsProcessed(_ string, records, _ int, _ time.Duration) {
	h.n.Add(int64(records))
}

// noopProcessor is the Go twin of noopNodeProcessor.
type noopProcessor struct{}

func (noopProcessor) Initialize(context.Context, consumer.InitializeInput) error { return nil }
func (noopProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (noopProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (noopProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (noopProcessor) LeaseLost(context.Context, consumer.LeaseLostInput) {}

func runMultiLang(ctx context.Context, cfg ConsumeConfig) (*MultiLangResult, error) {
	if err := peers.Install(ctx); err != nil {
		return nil, err
	}
	modules := filepath.Join(peers.NPMDir(), "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "aws-kcl")); err != nil {
		return nil, fmt.Errorf("aws-kcl is not installed in %s: run npm ci there", modules)
	}
	dir, err := os.MkdirTemp("", "ksp-bench-multilang-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "noop.js")
	if err := os.WriteFile(script, []byte(noopNodeProcessor), 0o644); err != nil {
		return nil, err
	}
	res := &MultiLangResult{Records: cfg.MultiLangRecords}
	for _, lang := range []string{"go", "node"} {
		rate, err := drainMultiLang(ctx, cfg, lang, script, modules)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lang, err)
		}
		if lang == "go" {
			res.Go = rate
		} else {
			res.Node = rate
		}
	}
	if res.Go.PerSecond > 0 {
		res.Ratio = res.Node.PerSecond / res.Go.PerSecond
	}
	return res, nil
}

// drainMultiLang fills a fresh stream and times one worker draining it.
func drainMultiLang(ctx context.Context, cfg ConsumeConfig, lang, script, modules string) (DrainRate, error) {
	n := cfg.MultiLangRecords
	srv, clients, err := startConsumeServer(ctx, cfg.Shards)
	if err != nil {
		return DrainRate{}, err
	}
	defer srv.Close()
	fmt.Fprintf(cfg.Progress, "consume multilang: filling %d shards with %d records for the %s processor\n", cfg.Shards, n, lang)
	if _, _, err := fill(ctx, clients[0], cfg.Size, n, true); err != nil {
		return DrainRate{}, fmt.Errorf("fill: %w", err)
	}
	count := &countHook{}
	opts := []consumer.Option{
		consumer.WithIdleTime(cfg.DrainIdle), consumer.WithShutdownTimeout(10 * time.Second), consumer.WithHooks(count),
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	if lang == "go" {
		c, err := consumer.New(append(opts, consumer.WithStream(streamName), consumer.WithKinesis(clients[1]),
			consumer.WithLeaseStore(memory.New()), consumer.WithInitialPosition(consumer.TrimHorizon()),
			consumer.WithProcessor(func(string) consumer.RecordProcessor { return noopProcessor{} }))...)
		if err != nil {
			return DrainRate{}, err
		}
		go func() { errc <- c.Run(runCtx) }()
	} else {
		props := &multilang.Properties{
			Executable: []string{"node", script}, ApplicationName: "bench", StreamName: streamName,
			TableName: "bench", InitialPosition: consumer.TrimHorizon(),
		}
		go func() {
			errc <- multilang.Run(runCtx, multilang.Config{
				Properties: props, Kinesis: clients[1], LeaseStore: memory.New(),
				Env: []string{"NODE_PATH=" + modules}, Options: opts,
			})
		}()
	}
	runDone := make(chan struct{})
	var runErr error
	go func() { runErr = <-errc; close(runDone) }()
	err = waitCount(ctx, &count.n, int64(n), time.Minute, runDone)
	took := time.Since(start)
	cancel()
	<-runDone
	if err != nil {
		return DrainRate{}, errors.Join(err, runErr)
	}
	return DrainRate{Seconds: took.Seconds(), PerSecond: float64(n) / took.Seconds()}, nil
}

// writeTable prints the multilang part.
func (m *MultiLangResult) writeTable(b *strings.Builder) {
	fmt.Fprintf(b, "\nmultilang: one worker drains %s pre-filled user records (aggregated) through a no-op processor that checkpoints each batch\n", comma(float64(m.Records)))
	writeColumns(b, [][]string{
		{"processor", "seconds", "user records/s"},
		{"Go (consumer.RecordProcessor)", fmt.Sprintf("%.2f", m.Go.Seconds), comma(m.Go.PerSecond)},
		{"Node.js (aws-kcl over ksp kcl)", fmt.Sprintf("%.2f", m.Node.Seconds), comma(m.Node.PerSecond)},
		{"Node / Go", "", fmt.Sprintf("%.2f", m.Ratio)},
	})
}
