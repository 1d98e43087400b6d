// Package demo runs ksp end to end in one process, with no AWS account: the
// embedded Kinesis server (in memory), the producer with KPL aggregation and
// strict ordering, and two consumer workers sharing a SQLite lease table.
// It checks that every record was consumed exactly once and, for each
// partition key, in the order it was put.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/progress"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
)

// Stream is the name of the stream the demo creates.
const Stream = "ksp-demo"

// workers is how many consumer workers share the stream.
const workers = 2

// Config is what to run. The zero value is the default demo.
type Config struct {
	// Records is how many order events to put (default 20,000).
	Records int
	// Customers is how many partition keys the events spread over (default 100).
	Customers int
	// Shards is the stream's shard count (default 4).
	Shards int
	// NoLimits turns off the server's per-shard AWS throughput limits.
	NoLimits bool
	// Timeout bounds the whole run (default 60 s); when it passes, Run
	// reports what is missing and fails.
	Timeout time.Duration
	// ProduceOver spreads the puts evenly over this long so the progress is
	// visible (default 3 s; negative: put as fast as possible).
	ProduceOver time.Duration
	// Progress is the period of the progress line when out is not a
	// terminal; in a terminal the line is redrawn in place (default 1 s;
	// negative: none).
	Progress time.Duration
}

func (c *Config) defaults() error {
	if c.Records == 0 {
		c.Records = 20000
	}
	if c.Customers == 0 {
		c.Customers = 100
	}
	if c.Shards == 0 {
		c.Shards = 4
	}
	if c.Timeout == 0 {
		c.Timeout = time.Minute
	}
	if c.ProduceOver == 0 {
		c.ProduceOver = 3 * time.Second
	}
	if c.Progress == 0 {
		c.Progress = time.Second
	}
	switch {
	case c.Records < 1:
		return fmt.Errorf("demo: records %d is below 1", c.Records)
	case c.Customers < 1:
		return fmt.Errorf("demo: customers %d is below 1", c.Customers)
	case c.Shards < 1 || c.Shards > 500:
		return fmt.Errorf("demo: shards %d is outside 1…500", c.Shards)
	case c.Timeout < 0:
		return fmt.Errorf("demo: timeout %v is negative", c.Timeout)
	}
	return nil
}

// ErrFailed is returned (wrapped) when records are missing, duplicated or
// out of order, or the run was cut short.
var ErrFailed = errors.New("demo failed")

// order is one event. ID is its global number (0…Records−1) and Seq its
// number among its customer's events, which the consumer checks for order.
type order struct {
	ID       int    `json:"id"`
	Customer string `json:"customer"`
	Seq      int    `json:"seq"`
	Item     string `json:"item"`
	Cents    int    `json:"cents"`
}

var items = []string{"apples", "pears", "plums", "figs", "cherries", "quinces"}

// tally is what the consumers saw.
type tally struct {
	mu       sync.Mutex     // guards: seen, next, consumed, dups, disorder, nDisord, bad, perWkr
	seen     []bool         // by order ID
	next     map[string]int // by customer: the Seq expected next
	consumed int            // unique records
	dups     int
	disorder []string     // the first few order violations
	nDisord  int          // order violations
	bad      int          // records that were not demo events
	perWkr   [workers]int // unique records by worker
}

func (t *tally) add(worker int, recs []consumer.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		var o order
		if err := json.Unmarshal(r.Data, &o); err != nil || o.ID < 0 || o.ID >= len(t.seen) || o.Customer != r.PartitionKey {
			t.bad++
			continue
		}
		if t.seen[o.ID] {
			t.dups++
			continue
		}
		t.seen[o.ID] = true
		t.consumed++
		t.perWkr[worker]++
		if want := t.next[o.Customer]; o.Seq != want {
			t.nDisord++
			if len(t.disorder) < 5 {
				t.disorder = append(t.disorder, fmt.Sprintf("%s: got seq %d, want %d", o.Customer, o.Seq, want))
			}
		}
		t.next[o.Customer] = max(t.next[o.Customer], o.Seq+1)
	}
}

func (t *tally) uniques() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.consumed
}

// leaseCount is a consumer hook that keeps a worker's lease count.
type leaseCount struct{ n atomic.Int64 }

func (l *leaseCount) OnLeasesHeld(n int) { l.n.Store(int64(n)) }

var _ consumer.HookLeasesHeld = (*leaseCount)(nil)

// Run runs the demo, printing progress and a summary to out. It returns nil
// when every record was consumed exactly once and in per-key order, and an
// error wrapping ErrFailed otherwise (or ctx's error when ctx ended first).
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	srv, err := server.New(server.Options{DisableLimits: cfg.NoLimits})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	defer srv.Close()
	limits := "on"
	if cfg.NoLimits {
		limits = "off"
	}
	fmt.Fprintf(out, "ksp demo: embedded Kinesis server on %s (in memory, AWS limits %s)\n", srv.URL(), limits)

	client := newClient(srv)
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(Stream), ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return fmt.Errorf("demo: creating stream %s: %w", Stream, err)
	}
	waiter := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 200*time.Millisecond
	})
	if err := waiter.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(Stream)}, 30*time.Second); err != nil {
		return fmt.Errorf("demo: waiting for stream %s: %w", Stream, err)
	}

	dir, err := os.MkdirTemp("", "ksp-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	leases, err := sqlite.Open(ctx, filepath.Join(dir, "leases.db"), "ksp-demo")
	if err != nil {
		return err
	}
	defer leases.Close()
	fmt.Fprintf(out, "stream %s: %d shards; %d consumer workers sharing the lease table %s\n", Stream, cfg.Shards, workers, filepath.Join(dir, "leases.db"))
	fmt.Fprintf(out, "putting %d order events for %d customers (KPL aggregation, strict ordering)\n", cfg.Records, cfg.Customers)

	runCtx, cancelRun := context.WithTimeout(ctx, cfg.Timeout)
	defer cancelRun()
	consumeCtx, stopConsumers := context.WithCancel(runCtx)
	defer stopConsumers()

	t := &tally{seen: make([]bool, cfg.Records), next: make(map[string]int, cfg.Customers)}
	var counts [workers]leaseCount
	var wg sync.WaitGroup
	consumerErrs := make([]error, workers)
	for i := range workers {
		c, err := consumer.New(
			consumer.WithStream(Stream),
			consumer.WithKinesis(client),
			consumer.WithLeaseStore(leases),
			consumer.WithWorkerID(fmt.Sprintf("worker-%d", i+1)),
			consumer.WithInitialPosition(consumer.TrimHorizon()),
			consumer.WithIdleTime(200*time.Millisecond),
			consumer.WithHooks(&counts[i]),
			consumer.WithHandler(func(_ context.Context, recs []consumer.Record) error {
				t.add(i, recs)
				return nil
			}),
		)
		if err != nil {
			return err
		}
		wg.Go(func() { consumerErrs[i] = c.Run(consumeCtx) })
	}
	defer wg.Wait() // after stopConsumers (defers run last-in first-out)

	p, err := producer.New(client, Stream, producer.Aggregation(true), producer.StrictOrdering(true))
	if err != nil {
		return err
	}
	var produceErr error
	produced := make(chan struct{})
	wg.Go(func() {
		defer close(produced)
		produceErr = produce(runCtx, p, cfg)
	})

	start := time.Now()
	var line *progress.Line
	if cfg.Progress > 0 {
		// In a terminal one line redrawn in place; elsewhere a line per period.
		line = progress.Start(out, func() string {
			return fmt.Sprintf("%5.1fs  produced %6d  consumed %6d  leases worker-1=%d worker-2=%d",
				time.Since(start).Seconds(), p.Stats().UserRecordsPut, t.uniques(), counts[0].n.Load(), counts[1].n.Load())
		}, progress.Options{PlainEvery: cfg.Progress})
		defer line.Stop()
	}
	done := time.NewTicker(20 * time.Millisecond) // checks for completion
	defer done.Stop()
	for finished := false; !finished; {
		select {
		case <-runCtx.Done():
			finished = true
		case <-done.C:
			select {
			case <-produced:
				finished = t.uniques() == cfg.Records
			default:
			}
		}
	}
	elapsed := time.Since(start)
	if line != nil {
		line.Stop() // the summary follows
	}
	timedOut := errors.Is(runCtx.Err(), context.DeadlineExceeded)
	stopConsumers()
	<-produced
	wg.Wait()
	cancelRun()
	st := p.Stats()
	return report(ctx, out, cfg, t, st, elapsed, timedOut, produceErr, errors.Join(consumerErrs...))
}

// newClient is a Kinesis client for srv speaking h2c (HTTP/2 without TLS),
// as servertest.Client does: the demo's workers share one connection.
func newClient(srv *server.Server) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       srv.Region(),
		BaseEndpoint: aws.String(srv.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("ksp", "ksp", ""),
		HTTPClient:   sdkhttp.NewH2C(),
	}, sdkhttp.FixKinesis)
}

// produce puts cfg.Records events, paced over cfg.ProduceOver, then closes p
// (which flushes).
func produce(ctx context.Context, p *producer.Producer, cfg Config) (err error) {
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ctx.Err() != nil {
			cancel() // interrupted: abandon what is unsent
		}
		if cerr := p.Close(closeCtx); err == nil && ctx.Err() == nil {
			err = cerr
		}
	}()
	const step = 50 * time.Millisecond
	perStep := cfg.Records
	if cfg.ProduceOver > 0 {
		perStep = max(1, int(int64(cfg.Records)*int64(step)/int64(cfg.ProduceOver)))
	}
	seq := make([]int, cfg.Customers)
	ticker := time.NewTicker(step)
	defer ticker.Stop()
	for id := 0; id < cfg.Records; {
		for end := min(id+perStep, cfg.Records); id < end; id++ {
			c := id % cfg.Customers
			if id%7 == 0 { // not round-robin: some customers burst
				c = (id / 7 * 13) % cfg.Customers
			}
			o := order{ID: id, Customer: fmt.Sprintf("customer-%03d", c), Seq: seq[c], Item: items[id%len(items)], Cents: 100 + id%900}
			seq[c]++
			data, _ := json.Marshal(o)
			if _, err := p.Put(ctx, producer.Record{PartitionKey: o.Customer, Data: data}); err != nil {
				return fmt.Errorf("put of order %d: %w", id, err)
			}
		}
		if id < cfg.Records {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ticker.C:
			}
		}
	}
	return nil
}

// report prints the summary and says whether the demo passed.
func report(ctx context.Context, out io.Writer, cfg Config, t *tally, st producer.Stats, elapsed time.Duration, timedOut bool, produceErr, consumeErr error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(out, "\nsummary after %.1fs:\n", elapsed.Seconds())
	fmt.Fprintf(out, "  produced   %d of %d (%d failed; %d Kinesis records in %d PutRecords requests, %d throttled entries)\n",
		st.UserRecordsPut, cfg.Records, st.UserRecordsFailed, st.KinesisRecordsPut, st.Requests, st.Throttles)
	fmt.Fprintf(out, "  consumed   %d unique, %d duplicates, %d missing\n", t.consumed, t.dups, cfg.Records-t.consumed)
	for i, n := range t.perWkr {
		share := 0.0
		if t.consumed > 0 {
			share = 100 * float64(n) / float64(t.consumed)
		}
		fmt.Fprintf(out, "  worker-%d   %d records (%.1f%%)\n", i+1, n, share)
	}
	if t.nDisord == 0 {
		fmt.Fprintf(out, "  order      per-key order verified for %d customers\n", len(t.next))
	} else {
		fmt.Fprintf(out, "  order      %d records out of per-key order: %s\n", t.nDisord, strings.Join(t.disorder, "; "))
	}

	var problems []string
	if produceErr != nil {
		problems = append(problems, "producer: "+produceErr.Error())
	}
	if consumeErr != nil {
		problems = append(problems, "consumer: "+consumeErr.Error())
	}
	if missing := cfg.Records - t.consumed; missing > 0 {
		var first []string
		for id, ok := range t.seen {
			if !ok {
				first = append(first, fmt.Sprint(id))
				if len(first) == 10 {
					break
				}
			}
		}
		problems = append(problems, fmt.Sprintf("%d records never consumed (order ids %s…)", missing, strings.Join(first, ", ")))
	}
	if t.dups > 0 {
		problems = append(problems, fmt.Sprintf("%d duplicates", t.dups))
	}
	if t.nDisord > 0 {
		problems = append(problems, fmt.Sprintf("%d records out of order", t.nDisord))
	}
	if t.bad > 0 {
		problems = append(problems, fmt.Sprintf("%d records that are not demo events", t.bad))
	}
	if len(problems) == 0 {
		fmt.Fprintf(out, "OK: all %d records consumed exactly once, in per-key order\n", cfg.Records)
		return nil
	}
	slices.Sort(problems)
	for _, p := range problems {
		fmt.Fprintf(out, "FAILED: %s\n", p)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: interrupted: %w", ErrFailed, ctx.Err())
	}
	if timedOut {
		return fmt.Errorf("%w: not done within the %v timeout", ErrFailed, cfg.Timeout)
	}
	return fmt.Errorf("%w: %s", ErrFailed, problems[0])
}
