package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// Consumer consumes one stream as one worker of an application: the workers
// sharing a lease table split the stream's shards between them.
type Consumer struct {
	cfg     config
	running atomic.Bool
}

// New validates the options and returns a Consumer; Run starts it.
func New(opts ...Option) (*Consumer, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.workerID == "" {
		cfg.workerID = defaultWorkerID()
	}
	if cfg.processor == nil {
		h := cfg.handler
		cfg.processor = func(string) RecordProcessor { return handlerProcessor{h} }
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	cfg.log = cfg.log.With("worker", cfg.workerID)
	if cfg.stream != "" {
		cfg.log = cfg.log.With("stream", cfg.stream)
	}
	return &Consumer{cfg: cfg}, nil
}

// WorkerID returns the id this worker writes as lease owner.
func (c *Consumer) WorkerID() string { return c.cfg.workerID }

// Run consumes until ctx ends, then shuts down gracefully and returns nil:
// it stops taking leases and reading, lets every processor finish its batch
// and checkpoint (ShutdownRequested), releases its leases so other workers
// take them at once, and waits for all its goroutines. It returns an error
// only when it cannot start (the lease table cannot be created, it belongs
// to a live KCL 3.x fleet and WithWorkerMetrics is not given
// (ErrFleetTable), or in multi-stream mode a stream cannot be described),
// and then before taking any lease. A Consumer
// runs once at a time; Run may be called again after it returned.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	if _, err := c.cfg.store.CreateTableIfNotExists(ctx); err != nil {
		return fmt.Errorf("consumer: creating the lease table: %w", err)
	}
	if err := c.cfg.store.WaitUntilTableExists(ctx); err != nil {
		return fmt.Errorf("consumer: waiting for the lease table: %w", err)
	}
	if err := c.cfg.checkFleetTable(ctx); err != nil {
		return err
	}
	streams, err := c.cfg.resolveStreams(ctx)
	if err != nil {
		return err
	}
	w := newWorker(&c.cfg)
	w.setStreams(streams)
	w.run(ctx)
	return nil
}
