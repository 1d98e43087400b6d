package consumer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestPartialBatch: a Handler that fails half-way through its first batch
// and says how far it got has only the rest delivered again: every record is
// processed exactly once, and the redelivery starts right after the record
// the error named.
func TestPartialBatch(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "partial", 1)
	p := newProducer(client, "partial", 20)
	p.round(t)
	var (
		mu        sync.Mutex
		processed = map[string]int{}
		calls     [][]consumer.Record
	)
	downstream := errors.New("downstream refused record")
	h := func(_ context.Context, recs []consumer.Record) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, recs)
		n := len(recs)
		if len(calls) == 1 {
			n = len(recs) / 2
		}
		for _, r := range recs[:n] {
			processed[string(r.Data)]++
		}
		if n < len(recs) {
			return &consumer.PartialBatchError{Processed: recs[n-1], Err: downstream}
		}
		return nil
	}
	r := start(t, append(fast("partial", client, memory.New(), "w1"), consumer.WithHandler(h))...)
	waitFor(t, 20*time.Second, "every record processed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(processed) == p.total()
	})
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	for data, n := range processed {
		if n != 1 {
			t.Errorf("record %s processed %d times", data, n)
		}
	}
	first := calls[0]
	if len(first) < 2 || len(calls) < 2 {
		t.Fatalf("deliveries: %d, first of %d records; want a batch of several, then a redelivery", len(calls), len(first))
	}
	last := first[len(first)/2-1]
	if got := calls[1][0]; got.SequenceNumber != first[len(first)/2].SequenceNumber || got.SubSequenceNumber != first[len(first)/2].SubSequenceNumber {
		t.Fatalf("redelivery starts at %s/%d, want the record after %s/%d", got.SequenceNumber, got.SubSequenceNumber, last.SequenceNumber, last.SubSequenceNumber)
	}
}

func TestPartialBatchErrorWraps(t *testing.T) {
	t.Parallel()
	cause := errors.New("boom")
	err := error(&consumer.PartialBatchError{Processed: consumer.Record{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 2}, Err: cause})
	if !errors.Is(err, cause) || err.Error() != "consumer: batch processed up to 49590338271490256608559692538361571095921575989136588898/2: boom" {
		t.Fatalf("%v", err)
	}
}
