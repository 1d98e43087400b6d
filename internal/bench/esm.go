package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/esm"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// ESMConfig describes one run of the event-source-mapping benchmark. Zero
// fields take the defaults named on each.
type ESMConfig struct {
	// Records put, then run through each mode (default 100,000).
	Records int
	// Shards of the stream (default 4).
	Shards int
	// BatchSize of the mapping (default 100, Lambda's).
	BatchSize int
	// Size of each record's data in bytes (default 100).
	Size int
	// Progress receives a line per phase (nil: none).
	Progress io.Writer
}

func (c *ESMConfig) setDefaults() {
	setDefault(&c.Records, 100_000)
	setDefault(&c.Shards, 4)
	setDefault(&c.BatchSize, 100)
	setDefault(&c.Size, 100)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first setting that cannot run.
func (c ESMConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Records < 1:
		return fmt.Errorf("records must be at least 1, not %d", c.Records)
	case c.Shards < 1 || c.Shards > 500:
		return fmt.Errorf("shards must be in 1..500, not %d", c.Shards)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("batch size must be in 1..10000, not %d", c.BatchSize)
	case c.Size < 1 || c.Size > 1<<20-64:
		return fmt.Errorf("size must be in 1..%d bytes, not %d", 1<<20-64, c.Size)
	}
	return nil
}

// ESM modes: the handler called in process, or a function over the Lambda
// Invoke HTTP API on loopback.
const (
	ESMInProcess = "in-process"
	ESMHTTP      = "http"
)

// ESMResult is one mode of the benchmark.
type ESMResult struct {
	Mode      string  `json:"mode"`
	Records   int     `json:"records"`
	Invokes   int     `json:"invokes"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"records_per_second"`
	// MeanInvoke is the mean time of one invoke as the runner sees it: the
	// overhead of calling a no-op handler (and, over HTTP, of encoding the
	// event, the round trip and decoding the response).
	MeanInvoke time.Duration `json:"mean_invoke_ns"`
}

// ESMReport is the outcome of `ksp bench esm`.
type ESMReport struct {
	Shards    int         `json:"shards"`
	BatchSize int         `json:"batch_size"`
	Size      int         `json:"size"`
	Results   []ESMResult `json:"results"`
}

// RunESM puts records into the embedded server, then runs them through
// esm.Run with a no-op handler, in process and over HTTP.
func RunESM(ctx context.Context, cfg ESMConfig) (*ESMReport, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srv, err := server.New(server.Options{DisableLimits: true})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer srv.Close()
	client := servertest.NewClient(srv.URL(), srv.Region())
	fmt.Fprintf(cfg.Progress, "esm: putting %d records\n", cfg.Records)
	if err := putESMRecords(ctx, client, cfg); err != nil {
		return nil, err
	}
	fn, stop, err := noopFunction()
	if err != nil {
		return nil, err
	}
	defer stop()
	rep := &ESMReport{Shards: cfg.Shards, BatchSize: cfg.BatchSize, Size: cfg.Size}
	for _, mode := range []string{ESMInProcess, ESMHTTP} {
		fmt.Fprintf(cfg.Progress, "esm: %s\n", mode)
		res, err := runESMOnce(ctx, client, cfg, mode, fn)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, *res)
	}
	return rep, nil
}

func putESMRecords(ctx context.Context, client *kinesis.Client, cfg ESMConfig) error {
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(streamName), ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return err
	}
	if err := servertest.WaitActive(ctx, client, streamName); err != nil {
		return err
	}
	data := []byte(strings.Repeat("x", cfg.Size))
	for put := 0; put < cfg.Records; {
		n := min(500, cfg.Records-put)
		entries := make([]types.PutRecordsRequestEntry, n)
		for i := range entries {
			entries[i] = types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(fmt.Sprint(put + i))}
		}
		out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(streamName), Records: entries})
		if err != nil {
			return err
		}
		if c := aws.ToInt32(out.FailedRecordCount); c > 0 {
			return fmt.Errorf("bench esm: %d records not put (limits are off)", c)
		}
		put += n
	}
	return nil
}

// noopFunction serves a no-op Kinesis function over the Lambda Invoke API
// on loopback (it decodes each event, as a runtime would) and returns its
// invoke URL.
func noopFunction() (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev events.KinesisEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
		}
		_, _ = io.WriteString(w, `{"batchItemFailures":[]}`)
	})}
	var wg sync.WaitGroup
	wg.Go(func() { _ = hs.Serve(l) })
	stop = func() {
		_ = hs.Close()
		wg.Wait()
	}
	return "http://" + l.Addr().String() + "/2015-03-31/functions/noop/invocations", stop, nil
}

// esmCounter counts settled records and invoke time; it ends the run once
// every record is settled.
type esmCounter struct {
	want int
	done context.CancelFunc

	mu      sync.Mutex // guards the fields below
	settled int
	invokes int
	took    time.Duration
	failed  error
}

func (c *esmCounter) OnOutcome(o esm.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settled += o.Settled
	if o.Err != nil && c.failed == nil {
		c.failed = o.Err
		c.done()
	}
	if c.settled >= c.want {
		c.done()
	}
}

func (c *esmCounter) OnInvoke(_ string, _ int, took time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invokes++
	c.took += took
}

func runESMOnce(ctx context.Context, client *kinesis.Client, cfg ESMConfig, mode, url string) (*ESMResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	count := &esmCounter{want: cfg.Records, done: cancel}
	mc := esm.Config{
		Stream: streamName, Kinesis: client, LeaseStore: memory.New(), StartingPosition: esm.TrimHorizon,
		BatchSize: cfg.BatchSize, PollInterval: 10 * time.Millisecond, Hooks: []esm.Hook{count},
	}
	began := time.Now()
	var err error
	if mode == ESMInProcess {
		err = esm.Run(ctx, mc, func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
			return events.KinesisEventResponse{}, nil
		})
	} else {
		err = esm.Run(ctx, mc, esm.InvokeHTTP(nil, url))
	}
	took := time.Since(began)
	count.mu.Lock()
	defer count.mu.Unlock()
	if count.failed != nil {
		return nil, fmt.Errorf("bench esm: %s: %w", mode, count.failed)
	}
	if count.settled < cfg.Records {
		if err == nil || errors.Is(err, context.Canceled) {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("bench esm: %s: %d of %d records settled: %w", mode, count.settled, cfg.Records, err)
	}
	res := &ESMResult{Mode: mode, Records: count.settled, Invokes: count.invokes, Seconds: took.Seconds(), PerSecond: float64(count.settled) / took.Seconds()}
	if count.invokes > 0 {
		res.MeanInvoke = count.took / time.Duration(count.invokes)
	}
	return res, nil
}

// WriteTable prints the report for people.
func (r *ESMReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ksp bench esm: %d-byte records from %d shards through esm.Run with a no-op handler, batches of %d (embedded server, limits off)\n\n", r.Size, r.Shards, r.BatchSize)
	rows := [][]string{{"mode", "records", "invokes", "records/s", "mean invoke"}}
	for _, res := range r.Results {
		rows = append(rows, []string{res.Mode, comma(float64(res.Records)), comma(float64(res.Invokes)), comma(res.PerSecond), res.MeanInvoke.Round(time.Microsecond).String()})
	}
	writeColumns(&b, rows)
	_, err := io.WriteString(w, b.String())
	return err
}
