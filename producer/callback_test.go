package producer_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
)

// tally records every callback of n records: how often each was called, its
// first result, and the order of the calls.
type tally struct {
	calls []atomic.Int32
	seq   atomic.Int64
	mu    sync.Mutex // guards: res, order
	res   []producer.Result
	order []int64
}

func newTally(n int) *tally {
	return &tally{calls: make([]atomic.Int32, n), res: make([]producer.Result, n), order: make([]int64, n)}
}

func (tl *tally) fn(i int) func(producer.Result) {
	return func(r producer.Result) {
		at := tl.seq.Add(1)
		if tl.calls[i].Add(1) != 1 {
			return
		}
		tl.mu.Lock()
		tl.res[i], tl.order[i] = r, at
		tl.mu.Unlock()
	}
}

// check fails unless each of the first n records' callbacks ran exactly
// once, with a result want accepts.
func (tl *tally) check(t *testing.T, n int, want func(r producer.Result) bool) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i := range n {
		if c := tl.calls[i].Load(); c != 1 {
			t.Fatalf("record %d: callback called %d times, want once", i, c)
		}
		if !want(tl.res[i]) {
			t.Fatalf("record %d: unexpected result %+v", i, tl.res[i])
		}
	}
	for i := n; i < len(tl.calls); i++ {
		if c := tl.calls[i].Load(); c != 0 {
			t.Fatalf("record %d was refused by PutCallback, yet its callback was called %d times", i, c)
		}
	}
}

// putEach puts records 0…n-1 with PutCallback, keyed by their number.
func putEach(ctx context.Context, t *testing.T, p *producer.Producer, tl *tally, n int) {
	t.Helper()
	for i := range n {
		if err := p.PutCallback(ctx, producer.Record{PartitionKey: strconv.Itoa(i), Data: []byte("x")}, tl.fn(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPutCallbackExactlyOnce: PutCallback calls every accepted record's
// callback exactly once, whether the record is put at once, after retries,
// expires, is cut off by Close, or is refused (then never).
func TestPutCallbackExactlyOnce(t *testing.T) {
	srv, c := newStream(t, server.Options{}, "callbacks", 2)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	fast := producer.RetryBackoff(time.Millisecond, 5*time.Millisecond)

	t.Run("success, in Put order within a Kinesis record", func(t *testing.T) {
		const n = 3000
		p, err := producer.New(c, "callbacks", producer.MaxBufferedTime(5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		tl := newTally(n + 1)
		for i := range n {
			if err := p.PutCallback(ctx, producer.Record{PartitionKey: "k" + strconv.Itoa(i%50), Data: idData(uint64(i), 16)}, tl.fn(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.PutCallback(ctx, producer.Record{Data: []byte("x")}, tl.fn(n)); kds.Code(err) != kds.ErrCodeValidation {
			t.Fatalf("PutCallback without a partition key = %v, want a ValidationException", err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		tl.check(t, n, func(r producer.Result) bool {
			return r.Err == nil && r.ShardID != "" && r.SequenceNumber != "" && r.Attempts == 1
		})
		// Records sharing a Kinesis record were called back in Put order,
		// which is their sub-sequence order.
		last := map[string]int{}
		for i := range n {
			r := tl.res[i]
			if j, ok := last[r.SequenceNumber]; ok && (tl.order[j] > tl.order[i] || tl.res[j].SubSequenceNumber >= r.SubSequenceNumber) {
				t.Fatalf("records %d and %d share %s but were called back out of Put order", j, i, r.SequenceNumber)
			}
			last[r.SequenceNumber] = i
		}
		if st := p.Stats(); st.UserRecordsPut != n || st.UserRecordsFailed != 0 {
			t.Fatalf("stats %+v", st)
		}
		if got := len(readAll(t, c, "callbacks").records); got != n {
			t.Fatalf("stream holds %d user records, %d were called back put", got, n)
		}
	})

	t.Run("retry", func(t *testing.T) {
		// Unaggregated, ten records a request: 30 requests, each failing
		// half the time, so some records are put only after retries.
		const n = 300
		srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"PutRecords": 0.5}})
		defer srv.SetFaults(server.Faults{})
		p, err := producer.New(c, "callbacks", producer.Aggregation(false), producer.CollectionMaxCount(10), producer.RateLimit(0), fast,
			producer.MaxBufferedTime(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		tl := newTally(n)
		putEach(ctx, t, p, tl, n)
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		retried := 0
		tl.check(t, n, func(r producer.Result) bool {
			if r.Attempts > 1 {
				retried++
			}
			return r.Err == nil && r.SequenceNumber != "" && r.Attempts >= 1
		})
		if retried == 0 || p.Stats().Retries == 0 {
			t.Fatalf("no record was retried (stats %+v)", p.Stats())
		}
	})

	t.Run("failure", func(t *testing.T) {
		const n = 200
		srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"PutRecords": 1}})
		defer srv.SetFaults(server.Faults{})
		// Every record expires after attempts only if the producer listed
		// the shards and sent it within the TTL: sent at once, and a TTL a
		// busy machine does not outlast (with 150 ms and the default 100 ms
		// linger, records expired unsent: "no shard map").
		p, err := producer.New(c, "callbacks", producer.RecordTTL(time.Second), producer.MaxBufferedTime(time.Millisecond), fast)
		if err != nil {
			t.Fatal(err)
		}
		tl := newTally(n)
		putEach(ctx, t, p, tl, n)
		if err := p.Close(ctx); err != nil { // waits for every record to expire
			t.Fatal(err)
		}
		tl.check(t, n, func(r producer.Result) bool {
			return errors.Is(r.Err, producer.ErrRecordExpired) && kds.Code(r.Err) == kds.ErrCodeInternalFailure && r.Attempts >= 1
		})
		if st := p.Stats(); st.UserRecordsFailed != n {
			t.Fatalf("stats %+v, want %d failed", st, n)
		}
	})

	t.Run("ctx cancel and Close giving up", func(t *testing.T) {
		const n = 10
		srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"PutRecords": 1}})
		defer srv.SetFaults(server.Faults{})
		p, err := producer.New(c, "callbacks", producer.BufferLimits(1<<30, n), fast)
		if err != nil {
			t.Fatal(err)
		}
		tl := newTally(n + 2)
		putEach(ctx, t, p, tl, n)
		// The buffer is full: a PutCallback waits for room until its
		// context ends, and its callback is never called.
		short, cancelShort := context.WithTimeout(ctx, 30*time.Millisecond)
		err = p.PutCallback(short, producer.Record{PartitionKey: "late", Data: []byte("x")}, tl.fn(n))
		cancelShort()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("PutCallback on a full buffer = %v, want the deadline", err)
		}
		canceled, cancelNow := context.WithCancel(ctx)
		cancelNow()
		if err := p.PutCallback(canceled, producer.Record{PartitionKey: "late", Data: []byte("x")}, tl.fn(n+1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("PutCallback with a canceled context on a full buffer = %v", err)
		}
		closeCtx, cancelClose := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancelClose()
		if err := p.Close(closeCtx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want the deadline", err)
		}
		tl.check(t, n, func(r producer.Result) bool {
			return errors.Is(r.Err, producer.ErrClosed) && errors.Is(r.Err, context.DeadlineExceeded)
		})
		if err := p.PutCallback(ctx, producer.Record{PartitionKey: "k", Data: []byte("x")}, tl.fn(n)); !errors.Is(err, producer.ErrClosed) {
			t.Fatalf("PutCallback after Close = %v, want ErrClosed", err)
		}
		tl.check(t, n, func(producer.Result) bool { return true })
	})

	t.Run("Flush delivers every result before it returns", func(t *testing.T) {
		const n = 500
		p, err := producer.New(c, "callbacks", producer.MaxBufferedTime(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		tl := newTally(n)
		var hs []*producer.Pending
		for i := range n {
			r := producer.Record{PartitionKey: strconv.Itoa(i), Data: []byte("x")}
			if i%2 == 0 { // handles and callbacks mix
				if err := p.PutCallback(ctx, r, tl.fn(i)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			h, err := p.Put(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
			tl.fn(i)(producer.Result{Err: nil, SequenceNumber: "handle"})
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		tl.check(t, n, func(r producer.Result) bool { return r.Err == nil && r.SequenceNumber != "" })
		for i, h := range hs {
			if res, ok := h.Result(); !ok || res.Err != nil || res.SequenceNumber == "" {
				t.Fatalf("handle %d after Flush: %+v, %v", i, res, ok)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Callbacks slower than Kinesis hold back sending: a request's slot is given
// back only after its callbacks ran, so with every slot's callbacks stuck the
// producer stops sending, its buffer fills and PutCallback refuses, instead
// of accepting records without bound while finished requests pile up
// waiting on their callbacks.
func TestSlowCallbacksHoldBackSending(t *testing.T) {
	_, c := newStream(t, server.Options{}, "slowcallbacks", 4)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const budget, slots = 100, 2
	p, err := producer.New(c, "slowcallbacks", producer.Aggregation(false), producer.MaxBufferedTime(time.Millisecond),
		producer.BufferLimits(1<<20, budget), producer.MaxConcurrentRequests(slots), producer.BufferFullPolicy(producer.FailFast))
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var called atomic.Int64
	fn := func(producer.Result) {
		<-gate
		called.Add(1)
	}
	// At most the buffer and the records of the requests whose callbacks
	// are stuck can be accepted.
	const bound = budget + slots*budget + 1
	accepted, refusedInARow := 0, 0
	for i := 0; refusedInARow < 300; i++ {
		err := p.PutCallback(ctx, producer.Record{PartitionKey: "k" + strconv.Itoa(i), Data: []byte("x")}, fn)
		switch {
		case err == nil:
			accepted++
			refusedInARow = 0
			if accepted > bound {
				close(gate)
				t.Fatalf("%d records accepted while every callback was stuck; at most %d fit", accepted, bound)
			}
		case errors.Is(err, producer.ErrBufferFull):
			refusedInARow++
			time.Sleep(time.Millisecond) // let the producer send what it may
		default:
			t.Fatal(err)
		}
	}
	close(gate)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := called.Load(); got != int64(accepted) {
		t.Fatalf("%d callbacks for %d accepted records", got, accepted)
	}
}
