package replicate_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
)

var bg = context.Background()

// fastConsumer are the consumer options the tests use: short failover,
// quick polling and shard sync.
func fastConsumer(worker string) []consumer.Option {
	return []consumer.Option{
		consumer.WithWorkerID(worker), consumer.WithFailoverTime(time.Second), consumer.WithIdleTime(20 * time.Millisecond),
		consumer.WithShardSyncInterval(200 * time.Millisecond), consumer.WithMaxRetryBackoff(200 * time.Millisecond),
		consumer.WithShutdownTimeout(5 * time.Second), consumer.WithMaxRecords(500),
	}
}

// checkpointHook adapts a function to consumer.HookCheckpoint.
type checkpointHook func(shardID string, cp lease.Checkpoint, err error)

// lostHook adapts a function to consumer.HookLeaseLost.
type lostHook func(shardID string)

func (f lostHook) OnLeaseLost(shardID string) { f(shardID) }

func (f checkpointHook) OnCheckpoint(shardID string, cp lease.Checkpoint, err error) {
	f(shardID, cp, err)
}

// keyed is a test record's data: key k's n-th record is "k<k>-<n>".
func keyed(k, n int) string { return fmt.Sprintf("k%03d-%05d", k, n) }

func parseKeyed(data string) (key string, n int, ok bool) {
	key, num, found := strings.Cut(data, "-")
	if !found {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	return key, n, err == nil
}

// sink reads a stream with a consumer and keeps every record's data in the
// order each key's records were processed. A copy of a record is told
// apart by its place in the stream (shard, sequence and sub-sequence
// number), so that the reader's own redeliveries are not counted as copies.
type sink struct {
	mu     sync.Mutex // guards: byKey, seen, at
	byKey  map[string][]int
	seen   map[string]int      // data -> copies in the stream
	at     map[string]struct{} // the places seen
	shards map[string]int      // records read per shard
	cancel context.CancelFunc
	done   chan struct{}
}

func readStream(t *testing.T, client *kinesis.Client, stream string) *sink {
	t.Helper()
	s := &sink{byKey: map[string][]int{}, seen: map[string]int{}, at: map[string]struct{}{}, shards: map[string]int{}, done: make(chan struct{})}
	c, err := consumer.New(append(fastConsumer("reader"), consumer.WithStream(stream), consumer.WithKinesis(client),
		consumer.WithLeaseStore(memory.New()), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithHandler(func(_ context.Context, recs []consumer.Record) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, r := range recs {
				key, n, ok := parseKeyed(string(r.Data))
				if !ok {
					return fmt.Errorf("unexpected record %q", r.Data)
				}
				at := fmt.Sprintf("%s/%s/%d", r.ShardID, r.SequenceNumber, r.SubSequenceNumber)
				if _, again := s.at[at]; again {
					continue // delivered again by the reader, not a copy in the stream
				}
				s.at[at] = struct{}{}
				s.shards[r.ShardID]++
				s.byKey[key] = append(s.byKey[key], n)
				s.seen[string(r.Data)]++
			}
			return nil
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	s.cancel = cancel
	go func() { defer close(s.done); _ = c.Run(ctx) }()
	t.Cleanup(s.stop)
	return s
}

func (s *sink) stop() {
	s.cancel()
	<-s.done
}

func (s *sink) unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// checkOrder checks that the first copy of each key's records came in put
// order: 0, 1, 2, … with nothing missing (replays may repeat a suffix).
func (s *sink) checkOrder(t *testing.T, keys, perKey int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range keys {
		key := fmt.Sprintf("k%03d", k)
		next := 0
		for _, n := range s.byKey[key] {
			if n == next {
				next++
			} else if n > next {
				t.Fatalf("key %s: record %d arrived before record %d (order %v)", key, n, next, s.byKey[key])
			}
		}
		if next != perKey {
			t.Fatalf("key %s: %d of %d records arrived", key, next, perKey)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
