package producer_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/breaker"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
)

// Against a server failing every PutRecords (--fault-error-rate
// PutRecords=1) the breaker opens and Put fails fast with ErrUnavailable,
// without taking buffer budget; once the fault is lifted, a probe closes
// the breaker and the records buffered before it opened are put.
func TestBreakerFailsFastAndRecovers(t *testing.T) {
	t.Parallel()
	srv, c := newStream(t, server.Options{}, "fragile", 2)
	if err := srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"PutRecords": 1}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // guards: changes
	var changes []string
	b, err := breaker.New(breaker.Name("kinesis"), breaker.ConsecutiveFailures(0), breaker.FailureRate(1, 3),
		// Open for 2 s: the refused Put below must come before the breaker
		// turns half-open, and a loaded machine can take longer than a few
		// hundred milliseconds between the two. (The producer waits out the
		// breaker's real open time, so its clock cannot be faked here.)
		breaker.Window(time.Second), breaker.OpenFor(2*time.Second),
		breaker.OnStateChange(func(c breaker.Change) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, c.From.String()+"->"+c.To.String())
		}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(c, "fragile", producer.WithBreaker(b), producer.RetryBackoff(10*time.Millisecond, 40*time.Millisecond),
		producer.MaxBufferedTime(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	var early []*producer.Pending
	for _, k := range []string{"a", "b", "c"} {
		pd, err := p.Put(ctx, producer.Record{PartitionKey: k, Data: []byte(k)})
		if err != nil {
			t.Fatal(err)
		}
		early = append(early, pd)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.State() != breaker.Open {
		if time.Now().After(deadline) {
			t.Fatalf("the breaker did not open; stats %+v", p.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	received := p.Stats().UserRecordsReceived
	_, err = p.Put(ctx, producer.Record{PartitionKey: "late", Data: []byte("late")})
	if !errors.Is(err, producer.ErrUnavailable) || !errors.Is(err, breaker.ErrOpen) || !strings.Contains(err.Error(), "breaker kinesis: open") {
		t.Fatalf("Put while open: %v, want ErrUnavailable wrapping the breaker's OpenError", err)
	}
	if got := p.Stats().UserRecordsReceived; got != received {
		t.Fatalf("a refused Put took buffer budget: %d records received, %d before", got, received)
	}

	if err := srv.SetFaults(server.Faults{}); err != nil {
		t.Fatal(err)
	}
	for i, pd := range early {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := pd.Wait(wctx)
		cancel()
		if err != nil {
			t.Fatalf("record %d buffered before the breaker opened: %v", i, err)
		}
		if res.Attempts < 2 {
			t.Fatalf("record %d put in %d attempts, want the failed ones counted", i, res.Attempts)
		}
	}
	if _, err := p.PutSync(ctx, producer.Record{PartitionKey: "after", Data: []byte("after")}); err != nil {
		t.Fatalf("Put after recovery: %v", err)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("breaker %v after recovery", b.State())
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(changes, " "); !strings.HasPrefix(got, "closed->open open->half-open") || !strings.HasSuffix(got, "half-open->closed") {
		t.Fatalf("state changes %q", got)
	}
}
