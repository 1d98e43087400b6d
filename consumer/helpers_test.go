package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

var bg = context.Background()

// fast are the options every test uses: short failover, quick polling.
func fast(stream string, k consumer.KinesisAPI, s lease.Store, worker string) []consumer.Option {
	return []consumer.Option{
		consumer.WithStream(stream), consumer.WithKinesis(k), consumer.WithLeaseStore(s), consumer.WithWorkerID(worker),
		consumer.WithFailoverTime(600 * time.Millisecond), consumer.WithIdleTime(20 * time.Millisecond),
		consumer.WithInitialPosition(consumer.TrimHorizon()), consumer.WithShardSyncInterval(200 * time.Millisecond),
		consumer.WithMaxRetryBackoff(200 * time.Millisecond), consumer.WithShutdownTimeout(5 * time.Second),
		consumer.WithLogger(testLogger()),
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("KSP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func startServer(t *testing.T, opts server.Options) (*server.Server, *kinesis.Client) {
	t.Helper()
	opts.DisableLimits = true
	srv := servertest.Start(t, opts)
	return srv, servertest.Client(t, srv)
}

// forEachRetrieval runs a test once per retrieval mode: polling (no
// option) and enhanced fan-out.
func forEachRetrieval(t *testing.T, test func(t *testing.T, mode []consumer.Option)) {
	t.Run("polling", func(t *testing.T) { test(t, nil) })
	t.Run("fanout", func(t *testing.T) { test(t, []consumer.Option{consumer.WithFanOut("app")}) })
}

// running is a consumer running in the background.
type running struct {
	c      *consumer.Consumer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, opts ...consumer.Option) *running {
	t.Helper()
	c, err := consumer.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop shuts the consumer down gracefully and waits (at most 20 s).
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("consumer %s did not stop", r.c.WorkerID())
	}
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// roundCounter counts a worker's lease-taking rounds (HookLeasesHeld, six
// to a failover time): "nothing happened for so many rounds" is then
// counted on the worker's own clock, not on the wall clock.
type roundCounter struct{ n atomic.Int64 }

func (r *roundCounter) OnLeasesHeld(int) { r.n.Add(1) }

// wait waits for n more rounds (at most 20 s, generous under -race).
func (r *roundCounter) wait(t *testing.T, n int64) {
	t.Helper()
	from := r.n.Load()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d more lease-taking rounds", n), func() bool { return r.n.Load() >= from+n })
}

// sink records what handlers processed.
type sink struct {
	mu    sync.Mutex // guards: count, byKey, total, dups, byWorker
	count map[string]int
	// byKey lists, per partition key, the data in processing order.
	byKey    map[string][]string
	total    int
	dups     int
	byWorker map[string]int
}

func newSink() *sink {
	return &sink{count: map[string]int{}, byKey: map[string][]string{}, byWorker: map[string]int{}}
}

func (s *sink) add(worker string, recs []consumer.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		id := r.ShardID + "/" + r.SequenceNumber + "/" + strconv.FormatInt(r.SubSequenceNumber, 10)
		s.count[id]++
		s.total++
		s.byWorker[worker]++
		if s.count[id] > 1 {
			s.dups++ // a replay: order is checked on first deliveries
			continue
		}
		s.byKey[r.PartitionKey] = append(s.byKey[r.PartitionKey], string(r.Data))
	}
}

func (s *sink) handler(worker string) consumer.Handler {
	return func(ctx context.Context, recs []consumer.Record) error {
		s.add(worker, recs)
		return nil
	}
}

func (s *sink) unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *sink) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

// checkOrder checks that, counting first deliveries, every key's data
// arrived as key-0, key-1, …, n records in all.
func (s *sink) checkOrder(t *testing.T, n int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	got := 0
	for k, data := range s.byKey {
		for i, d := range data {
			if want := fmt.Sprintf("%s-%d", k, i); d != want {
				t.Fatalf("key %s: record %d is %q, want %q (order: %v)", k, i, d, want, data)
			}
		}
		got += len(data)
	}
	if got != n {
		t.Fatalf("processed %d records, want %d", got, n)
	}
}

// producer puts records whose data is key-N, N counting per key.
type producer struct {
	c      *kinesis.Client
	stream string
	keys   []string
	mu     sync.Mutex // guards: next, put
	next   map[string]int
	put    int
}

func newProducer(c *kinesis.Client, stream string, keys int) *producer {
	p := &producer{c: c, stream: stream, next: map[string]int{}}
	for i := range keys {
		p.keys = append(p.keys, fmt.Sprintf("k%03d", i))
	}
	return p
}

// round puts one record for every key in one PutRecords call, retrying
// failed entries in order (so per-key order holds).
func (p *producer) round(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	entries := make([]types.PutRecordsRequestEntry, 0, len(p.keys))
	for _, k := range p.keys {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: fmt.Appendf(nil, "%s-%d", k, p.next[k])})
		p.next[k]++
	}
	for attempt := 0; len(entries) > 0; attempt++ {
		if attempt > 50 {
			t.Errorf("PutRecords kept failing")
			return
		}
		out, err := p.c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries})
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		var failed []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, entries[i])
			} else {
				p.put++
			}
		}
		entries = failed
	}
}

func (p *producer) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.put
}

// background puts rounds until stop is called.
func (p *producer) background(t *testing.T, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			p.round(t)
			time.Sleep(every)
		}
	}()
	return func() { cancel(); <-done }
}

// owners counts the leases each worker owns.
func owners(t *testing.T, s lease.Store) map[string]int {
	t.Helper()
	ls, err := s.ListLeases(bg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range ls {
		if !l.Checkpoint.IsShardEnd() {
			out[l.LeaseOwner]++
		}
	}
	return out
}
