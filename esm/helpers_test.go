package esm

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

func noop(context.Context, events.KinesisEvent) error { return nil }

// stream is a one-shard stream on the embedded server holding records
// r0…r(n-1), put in order, and a log of everything a mapping did with
// them: invokes, on-failure deliveries and checkpoints, in the order they
// happened (one shard: one goroutine does them all).
type stream struct {
	t       *testing.T
	client  *kinesis.Client
	name    string
	arn     string
	seqs    []string             // seqs[i] is ri's sequence number
	arrival map[string]time.Time // by sequence number
	store   *memory.Store

	mu        sync.Mutex // guards: log, delivered, done
	log       []string
	delivered []InvocationRecord
	done      chan struct{} // closed when the last record is checkpointed
}

func newStream(t *testing.T, n int) *stream {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	return newStreamKeys(t, keys...)
}

// newStreamKeys is newStream with record ri put with partition key keys[i].
func newStreamKeys(t *testing.T, keys ...string) *stream {
	t.Helper()
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	s := &stream{t: t, client: servertest.Client(t, srv), name: "s", arrival: map[string]time.Time{}, store: memory.New()}
	ctx := t.Context()
	if _, err := s.client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s.name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(ctx, s.client, s.name); err != nil {
		t.Fatal(err)
	}
	s.put(keys)
	return s
}

// putData adds one record with the given data (named by its data in the
// invoke log, and ri elsewhere).
func (s *stream) putData(data string) {
	s.t.Helper()
	s.putWith([]string{"k"}, func(int) []byte { return []byte(data) })
}

// put adds records r(len(seqs))… with the given partition keys.
func (s *stream) put(keys []string) {
	s.t.Helper()
	s.putWith(keys, func(i int) []byte { return fmt.Appendf(nil, "r%d", i) })
}

func (s *stream) putWith(keys []string, data func(i int) []byte) {
	s.t.Helper()
	ctx := s.t.Context()
	for _, key := range keys {
		i := len(s.seqs)
		out, err := s.client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(s.name), PartitionKey: aws.String(key), Data: data(i)})
		if err != nil {
			s.t.Fatal(err)
		}
		s.seqs = append(s.seqs, aws.ToString(out.SequenceNumber))
	}
	// Read the arrival times back, for the expected invocation records.
	it, err := s.client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(s.name), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "TRIM_HORIZON"})
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := s.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, r := range out.Records {
		s.arrival[aws.ToString(r.SequenceNumber)] = aws.ToTime(r.ApproximateArrivalTimestamp)
	}
	d, err := s.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.name)})
	if err != nil {
		s.t.Fatal(err)
	}
	s.arn = aws.ToString(d.StreamDescriptionSummary.StreamARN)
}

// split splits the stream's shard in two halves of the hash key range,
// closing it.
func (s *stream) split() {
	s.t.Helper()
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	if _, err := s.client.SplitShard(s.t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(s.name),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half.String())}); err != nil {
		s.t.Fatal(err)
	}
	if err := servertest.WaitActive(s.t.Context(), s.client, s.name); err != nil {
		s.t.Fatal(err)
	}
}

// name returns "ri" for ri's sequence number.
func (s *stream) rec(seq string) string {
	for i, q := range s.seqs {
		if q == seq {
			return fmt.Sprint("r", i)
		}
	}
	return "?" + seq
}

func (s *stream) record(entry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, entry)
}

// OnCheckpoint implements consumer.HookCheckpoint.
func (s *stream) OnCheckpoint(_ string, cp lease.Checkpoint, err error) {
	if err != nil {
		s.record("checkpoint failed " + err.Error())
		return
	}
	s.record("checkpoint " + s.rec(cp.SequenceNumber))
	if cp.SequenceNumber == s.seqs[len(s.seqs)-1] {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.done != nil {
			close(s.done)
			s.done = nil
		}
	}
}

// Deliver is an on-failure destination that logs what it got.
func (s *stream) Deliver(_ context.Context, rec InvocationRecord) error {
	s.record(fmt.Sprintf("deliver %s %s…%s", rec.RequestContext.Condition, s.rec(rec.KinesisBatchInfo.StartSequenceNumber), s.rec(rec.KinesisBatchInfo.EndSequenceNumber)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered = append(s.delivered, rec)
	return nil
}

// config is a fast mapping over the stream that logs to s.
func (s *stream) config() Config {
	return Config{
		Stream: s.name, Kinesis: s.client, LeaseStore: s.store, StartingPosition: TrimHorizon,
		OnFailure: s, PollInterval: 10 * time.Millisecond, RetryDelay: time.Millisecond, Logger: testLogger(),
		ConsumerOptions: []consumer.Option{
			consumer.WithHooks(s), consumer.WithFailoverTime(600 * time.Millisecond),
			consumer.WithMaxRetryBackoff(50 * time.Millisecond), consumer.WithShutdownTimeout(5 * time.Second),
		},
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("KSP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// logInvoke logs an invoke of ev as "invoke r0,r1".
func (s *stream) logInvoke(ev events.KinesisEvent) []string {
	names := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		names[i] = string(r.Kinesis.Data)
	}
	s.record("invoke " + strings.Join(names, ","))
	return names
}

// run runs the mapping until the last record is checkpointed, then stops
// it and returns the log.
func run[H Handler](s *stream, cfg Config, h H) []string {
	s.t.Helper()
	done := make(chan struct{})
	s.mu.Lock()
	s.done = done
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(s.t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg, h) }()
	select {
	case <-done:
	case err := <-errc:
		s.t.Fatalf("Run returned early: %v\nlog: %q", err, s.snapshot())
	case <-time.After(20 * time.Second):
		s.t.Fatalf("the last record was not checkpointed; log: %q", s.snapshot())
	}
	cancel()
	if err := <-errc; err != nil {
		s.t.Fatalf("Run: %v", err)
	}
	return s.snapshot()
}

func (s *stream) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// failing returns a handler that fails (returns an error) every invoke
// whose batch holds one of the named records, for the first times
// invokes of each (-1: always).
func failing(s *stream, times int, names ...string) func(context.Context, events.KinesisEvent) error {
	left := map[string]int{}
	for _, n := range names {
		left[n] = times
	}
	var mu sync.Mutex
	return func(_ context.Context, ev events.KinesisEvent) error {
		mu.Lock()
		defer mu.Unlock()
		var failed []string
		for _, n := range s.logInvoke(ev) {
			if left[n] != 0 {
				left[n]--
				failed = append(failed, n)
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("cannot handle %v", failed)
		}
		return nil
	}
}

func expectLog(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log\n got: %q\nwant: %q", got, want)
	}
}
