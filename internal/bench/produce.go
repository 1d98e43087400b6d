package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// GoalProduceAggregated is the target rate of `ksp bench produce` with
// aggregation on: user records per second.
const GoalProduceAggregated = 1_000_000

// ProduceConfig describes one run of the producer benchmark. Zero fields
// take the defaults named on each.
type ProduceConfig struct {
	// Records put with aggregation on (default 1,000,000).
	Records int
	// RawRecords put with aggregation off (default 200,000).
	RawRecords int
	// Shards of the stream (default 4).
	Shards int
	// Size of each record's data in bytes, at least 8 (default 100).
	Size int
	// Writers are the goroutines calling Put (default 4).
	Writers int
	// CPUProfile, when not "", is a file to write a CPU profile of the
	// whole run to (go tool pprof).
	CPUProfile string
	// Progress receives a line per phase (nil: none).
	Progress io.Writer
}

func (c *ProduceConfig) setDefaults() {
	setDefault(&c.Records, 1_000_000)
	setDefault(&c.RawRecords, 200_000)
	setDefault(&c.Shards, 4)
	setDefault(&c.Size, 100)
	setDefault(&c.Writers, 4)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first setting that cannot run.
func (c ProduceConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Records < 1 || c.RawRecords < 1:
		return fmt.Errorf("records must be at least 1, not %d and %d", c.Records, c.RawRecords)
	case c.Shards < 1 || c.Shards > 500:
		return fmt.Errorf("shards must be in 1..500, not %d", c.Shards)
	case c.Size < 8 || c.Size > 1<<20-64:
		return fmt.Errorf("size must be in 8..%d bytes, not %d", 1<<20-64, c.Size)
	case c.Writers < 1:
		return fmt.Errorf("writers must be at least 1, not %d", c.Writers)
	}
	return nil
}

// The APIs the producer benchmark puts records with.
const (
	APIPut         = "Put"         // a handle (future) per record
	APIPutCallback = "PutCallback" // a callback per record, no handle
)

// ProduceResult is one mode of the producer benchmark.
type ProduceResult struct {
	Aggregation bool `json:"aggregation"`
	// API is APIPut or APIPutCallback.
	API       string  `json:"api"`
	Records   int     `json:"records"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"user_records_per_second"`
	// CPUPerRecord is the process's CPU time (user + system) per user
	// record; the embedded server runs in the same process and is included.
	CPUPerRecord time.Duration `json:"cpu_ns_per_record"`
	// AllocsPerRecord counts heap allocations per user record, the server's
	// included.
	AllocsPerRecord   float64 `json:"allocs_per_record"`
	KinesisRecords    int64   `json:"kinesis_records"`
	Requests          int64   `json:"requests"`
	BytesPerRequest   float64 `json:"bytes_per_request"`
	RecordsPerKinesis float64 `json:"user_records_per_kinesis_record"`
	Retries           int64   `json:"retries"`
}

// ProduceReport is the outcome of `ksp bench produce`.
type ProduceReport struct {
	Size    int             `json:"size"`
	Shards  int             `json:"shards"`
	Writers int             `json:"writers"`
	CPUs    int             `json:"cpus"`
	LoadAvg float64         `json:"load_average"`
	Results []ProduceResult `json:"results"`
}

// RunProduce puts records through a producer into the embedded server
// (limits off, in-memory store), with aggregation on and then off, each
// with Put and with PutCallback.
func RunProduce(ctx context.Context, cfg ProduceConfig) (rep *ProduceReport, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer func() {
			if perr := stop(); err == nil && perr != nil {
				rep, err = nil, perr
			}
		}()
	}
	rep = &ProduceReport{Size: cfg.Size, Shards: cfg.Shards, Writers: cfg.Writers, CPUs: runtime.NumCPU(), LoadAvg: loadAvg()}
	// The first run in a process grows the heap for all: a tenth of a run,
	// not reported, keeps that from the first mode's figures.
	warm := max(cfg.Records/10, 1)
	fmt.Fprintf(cfg.Progress, "produce: warming up with %d records\n", warm)
	if _, err := runProduceOnce(ctx, cfg, true, APIPutCallback, warm); err != nil {
		return nil, err
	}
	for _, agg := range []bool{true, false} {
		n := cfg.Records
		if !agg {
			n = cfg.RawRecords
		}
		for _, api := range []string{APIPut, APIPutCallback} {
			fmt.Fprintf(cfg.Progress, "produce: %d records, aggregation %v, %s\n", n, agg, api)
			res, err := runProduceOnce(ctx, cfg, agg, api, n)
			if err != nil {
				return nil, err
			}
			rep.Results = append(rep.Results, *res)
		}
	}
	return rep, nil
}

// startCPUProfile starts a CPU profile into path; stop ends it and closes
// the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func runProduceOnce(ctx context.Context, cfg ProduceConfig, agg bool, api string, n int) (*ProduceResult, error) {
	srv, err := server.New(server.Options{DisableLimits: true})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer srv.Close()
	client := servertest.NewClient(srv.URL(), srv.Region(), func(o *kinesis.Options) { o.HTTPClient = produceHTTPClient() })
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(streamName), ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return nil, err
	}
	if err := servertest.WaitActive(ctx, client, streamName); err != nil {
		return nil, err
	}
	p, err := producer.New(client, streamName, producer.Aggregation(agg), producer.RateLimit(0))
	if err != nil {
		return nil, err
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuTime()
	start := time.Now()
	err = putAllWith(ctx, p, api, benchKeys(10000), n, cfg.Writers, cfg.Size)
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&m1)
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	st := p.Stats()
	return &ProduceResult{
		Aggregation: agg, API: api, Records: n, Seconds: elapsed.Seconds(), PerSecond: float64(n) / elapsed.Seconds(),
		CPUPerRecord:    cpu / time.Duration(n),
		AllocsPerRecord: float64(m1.Mallocs-m0.Mallocs) / float64(n),
		KinesisRecords:  st.KinesisRecordsPut, Requests: st.Requests,
		BytesPerRequest:   float64(st.RequestBytes) / float64(max(st.Requests, 1)),
		RecordsPerKinesis: float64(n) / float64(max(st.KinesisRecordsPut, 1)),
		Retries:           st.Retries,
	}, nil
}

// putAllWith is putAll with api: APIPut, or APIPutCallback with one
// callback for all records that keeps the first failure.
func putAllWith(ctx context.Context, p *producer.Producer, api string, keys []string, n, writers, size int) error {
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	done := func(r producer.Result) {
		if r.Err != nil {
			fail(r.Err)
		}
	}
	for w := range writers {
		wg.Go(func() {
			data := make([]byte, max(size, 8))[:size]
			binary.BigEndian.PutUint64(data[:8:8], uint64(w))
			for i := w; i < n; i += writers {
				rec := producer.Record{PartitionKey: keys[i%len(keys)], Data: data}
				var err error
				if api == APIPutCallback {
					err = p.PutCallback(ctx, rec, done)
				} else {
					_, err = p.Put(ctx, rec)
				}
				if err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Close(ctx); err != nil { // every callback has returned
		fail(err)
	}
	if firstErr != nil {
		return firstErr
	}
	if st := p.Stats(); st.UserRecordsPut != int64(n) {
		return fmt.Errorf("%d of %d records put (%d failed)", st.UserRecordsPut, n, st.UserRecordsFailed)
	}
	return nil
}

// produceHTTPClient speaks h2c, as servertest.Client and the Java SDK do.
func produceHTTPClient() *http.Client { return sdkhttp.NewH2C() }

// WriteTable prints the report for people.
func (r *ProduceReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ksp bench produce: %d-byte records from %d goroutines through producer.Put and PutCallback into the embedded server (limits off, %d shards)\n", r.Size, r.Writers, r.Shards)
	fmt.Fprintf(&b, "machine: %d CPUs, load average %.2f at start; CPU time (rusage of this process) and allocations include the in-process server\n\n", r.CPUs, r.LoadAvg)
	rows := [][]string{{"aggregation", "API", "user records", "user rec/s", "CPU/record", "allocs/record", "Kinesis records", "user/Kinesis", "requests", "bytes/request"}}
	for _, res := range r.Results {
		rows = append(rows, []string{
			map[bool]string{true: "on", false: "off"}[res.Aggregation], res.API, comma(float64(res.Records)), comma(res.PerSecond),
			res.CPUPerRecord.String(), strconv.FormatFloat(res.AllocsPerRecord, 'f', 2, 64), comma(float64(res.KinesisRecords)),
			strconv.FormatFloat(res.RecordsPerKinesis, 'f', 1, 64), comma(float64(res.Requests)), comma(res.BytesPerRequest),
		})
	}
	writeColumns(&b, rows)
	b.WriteString("\n")
	for _, res := range r.Results {
		if res.Aggregation {
			verdict := "met"
			if res.PerSecond < GoalProduceAggregated {
				verdict = "not met"
			}
			fmt.Fprintf(&b, "goal: ≥ %s user records/s with aggregation, %s: %s (%s)\n", comma(GoalProduceAggregated), res.API, comma(res.PerSecond), verdict)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
