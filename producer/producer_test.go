package producer_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestPutValidation(t *testing.T) {
	t.Parallel()
	_, c := newStream(t, server.Options{}, "valid", 1)
	p, err := producer.New(c, "valid", producer.MaxRecordSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		rec  producer.Record
		code string
		want string
	}{
		{"empty key", producer.Record{Data: []byte("x")}, kds.ErrCodeValidation, "partitionKey"},
		{"long key", producer.Record{PartitionKey: strings.Repeat("é", 257), Data: []byte("x")}, kds.ErrCodeValidation, "257 characters"},
		{"bad utf8 key", producer.Record{PartitionKey: "\xff", Data: []byte("x")}, kds.ErrCodeValidation, "Unicode"},
		{"ehk not decimal", producer.Record{PartitionKey: "k", ExplicitHashKey: "12a", Data: []byte("x")}, kds.ErrCodeInvalidArgument, "12a"},
		{"ehk negative", producer.Record{PartitionKey: "k", ExplicitHashKey: "-1"}, kds.ErrCodeInvalidArgument, "-1"},
		{"ehk leading zero", producer.Record{PartitionKey: "k", ExplicitHashKey: "01"}, kds.ErrCodeInvalidArgument, "01"},
		{"ehk 2^128", producer.Record{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211456"}, kds.ErrCodeInvalidArgument, "340282366920938463463374607431768211456"},
		{"oversize", producer.Record{PartitionKey: "k", Data: make([]byte, 1024)}, kds.ErrCodeInvalidArgument, "1025 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := p.Put(ctx, tc.rec)
			var ke *kds.Error
			if h != nil || !errors.As(err, &ke) || ke.Code != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Put = %v, %v; want a %s naming %q", h, err, tc.code, tc.want)
			}
		})
	}
	// 256 characters of 2 bytes each is a valid key; so is the largest record.
	if _, err := p.PutSync(ctx, producer.Record{PartitionKey: strings.Repeat("é", 256), Data: make([]byte, 1024-512)}); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Put(ctx, producer.Record{PartitionKey: "k"}); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	_, c := newStream(t, server.Options{}, "opts", 1)
	for _, o := range []producer.Option{
		producer.AggregationMaxSize(10), producer.MaxBufferedTime(-1), producer.CollectionMaxCount(501),
		producer.CollectionMaxSize(0), producer.RateLimit(-1), producer.RecordTTL(0), producer.MaxConcurrentRequests(0),
		producer.BufferLimits(0, 1), producer.BufferFullPolicy(7), producer.RetryBackoff(time.Second, time.Millisecond),
		producer.MaxRecordSize(11 << 20), producer.WithHooks(new(counter), "not a hook"),
	} {
		if _, err := producer.New(c, "opts", o); err == nil {
			t.Errorf("option %#v accepted", o)
		}
	}
	if _, err := producer.New(c, "opts", producer.WithHooks("not a hook")); err == nil || !strings.Contains(err.Error(), "hook 0 (string) implements no Hook interface") {
		t.Errorf("a value implementing no hook: %v", err)
	}
	if _, err := producer.New(c, ""); kds.Code(err) != kds.ErrCodeValidation {
		t.Errorf("empty stream name: %v", err)
	}
}

// TestThrottling puts records under the server's shard limits while one
// shard is forced to throttle for a while: every record is put, each once,
// the retries and throttles are counted by the hooks, and once the forced
// throttling has ended each shard's rate settles in a band of its limit
// (1,000 records/s): between half of it (AIMD halves the rate on a
// throttle) and the limit, counted by the server's arrival timestamps in
// one-second windows.
func TestThrottling(t *testing.T) {
	// Not parallel: the rate it checks is real time, and other tests of the
	// package would take the CPU the producer needs to keep up.
	const total = 12000
	srv, c := newStream(t, server.Options{}, "throttled", 2)
	if err := srv.SetFaults(server.Faults{Throttle: []string{"throttled/shardId-000000000000"}}); err != nil {
		t.Fatal(err)
	}
	hooks := new(counter)
	p, err := producer.New(c, "throttled", producer.Aggregation(false), producer.WithHooks(hooks), producer.RetryBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	hs := make([]*producer.Pending, total)
	var unthrottled time.Time
	for i := range total {
		if i == total/10 {
			waitThrottled(t, p)
			srv.SetFaults(server.Faults{}) // the forced throttling ends; the limits stay
			unthrottled = time.Now()
		}
		h, err := p.Put(ctx, producer.Record{PartitionKey: strconv.Itoa(i), Data: idData(uint64(i), 100)})
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		if res, ok := h.Result(); !ok || res.Err != nil {
			t.Fatalf("record %d: %+v %v", i, res, ok)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Throttles == 0 || st.Retries == 0 || hooks.retries.Load() == 0 || hooks.throttles.Load() == 0 || hooks.errors.Load() == 0 {
		t.Fatalf("throttling not counted: stats %+v, hooks retries %d throttles %d errors %d", st, hooks.retries.Load(), hooks.throttles.Load(), hooks.errors.Load())
	}
	if hooks.put.Load() != total || hooks.failed.Load() != 0 {
		t.Fatalf("hooks: put %d failed %d", hooks.put.Load(), hooks.failed.Load())
	}
	checkOnce(t, readAll(t, c, "throttled"), total)
	// In the first seconds after the forced throttling the throttled shard's
	// rate climbs back and the server's burst allowance (a second of tokens)
	// is spent; the windows after them are the settled rate.
	settled := unthrottled.Add(2 * time.Second)
	for _, sh := range servertest.Shards(t, c, "throttled") {
		counts := windowCounts(servertest.ReadShard(t, c, "throttled", *sh.ShardId), settled, time.Second)
		if len(counts) == 0 {
			t.Fatalf("%s: no full second of records after the forced throttling", *sh.ShardId)
		}
		// The upper quartile of the seconds reaches at least half the limit:
		// AIMD climbs back after the throttling instead of collapsing. (The
		// server enforces the ceiling, with a second of burst, so seconds
		// above the limit are allowed.) The lower seconds are not checked:
		// on a machine busy with other test binaries a second can pass
		// without the producer being scheduled at all.
		sorted := slices.Sorted(slices.Values(counts))
		upper := sorted[len(sorted)*3/4]
		t.Logf("%s: records per second after settling %v (upper quartile %d; limit %d)", *sh.ShardId, counts, upper, kds.ShardWriteRecordsPerSecond)
		if upper < kds.ShardWriteRecordsPerSecond/2 {
			t.Errorf("%s: upper quartile %d records/s after settling, want at least %d", *sh.ShardId, upper, kds.ShardWriteRecordsPerSecond/2)
		}
	}
}

// windowCounts counts records by arrival time in consecutive windows of
// width from start, leaving out the last, partial window.
func windowCounts(recs []types.Record, start time.Time, width time.Duration) []int {
	var counts []int
	for _, r := range recs {
		at := aws.ToTime(r.ApproximateArrivalTimestamp)
		if at.Before(start) {
			continue
		}
		i := int(at.Sub(start) / width)
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	if len(counts) > 0 {
		counts = counts[:len(counts)-1]
	}
	return counts
}

// waitThrottled waits until the producer has seen a throttle.
func waitThrottled(t *testing.T, p *producer.Producer) {
	t.Helper()
	for range 1000 {
		if p.Stats().Throttles > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no throttle seen")
}

// checkOnce checks that every id below total was read exactly once, from a
// shard that owns its hash key, and that nothing was dropped.
func checkOnce(t *testing.T, rb readBack, total int) {
	t.Helper()
	if rb.dropped != 0 {
		t.Fatalf("%d user records dropped by hash range filtering", rb.dropped)
	}
	seen := make([]int, total)
	for _, r := range rb.records {
		id := dataID(r.Data)
		if id >= uint64(total) {
			t.Fatalf("unknown record %d", id)
		}
		seen[id]++
		if !r.rng.Contains(effectiveHash(t, r.UserRecord)) {
			t.Fatalf("record %d on %s, outside its hash range", id, r.shardID)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("record %d read %d times", id, n)
		}
	}
}

// TestStrictOrdering puts records of a few keys in order while a shard is
// forced to throttle: with StrictOrdering every key's records are read back
// in put order.
func TestStrictOrdering(t *testing.T) {
	t.Parallel()
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregation=%v", agg), func(t *testing.T) {
			const total, keys = 3000, 20
			name := fmt.Sprintf("strict-%v", agg)
			srv, c := newStream(t, server.Options{}, name, 2)
			srv.SetFaults(server.Faults{Throttle: []string{name + "/shardId-000000000001"}})
			p, err := producer.New(c, name, producer.StrictOrdering(true), producer.Aggregation(agg),
				producer.MaxBufferedTime(5*time.Millisecond), producer.AggregationMaxSize(2000),
				producer.RetryBackoff(5*time.Millisecond, 50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			for i := range total {
				if i == total/3 {
					waitThrottled(t, p)
					srv.SetFaults(server.Faults{})
				}
				if _, err := p.Put(ctx, producer.Record{PartitionKey: "key-" + strconv.Itoa(i%keys), Data: idData(uint64(i), 50)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st := p.Stats()
			if st.UserRecordsPut != total || st.Throttles == 0 {
				t.Fatalf("stats %+v", st)
			}
			rb := readAll(t, c, name)
			checkOnce(t, rb, total)
			last := map[string]int64{}
			for _, r := range rb.records {
				id := int64(dataID(r.Data))
				if prev, ok := last[r.PartitionKey]; ok && id < prev {
					t.Fatalf("key %s: record %d read after %d", r.PartitionKey, id, prev)
				}
				last[r.PartitionKey] = id
			}
			t.Logf("%d throttles, %d retries, %d requests", st.Throttles, st.Retries, st.Requests)
		})
	}
}

// TestResharding splits and merges shards while records are put: nothing
// is lost, each record is read once where it belongs, and every aggregate
// holds only records of its shard, except those the producer knows landed
// off their shard (an aggregate in flight across a split) and put again.
func TestResharding(t *testing.T) {
	t.Parallel()
	const total = 60000
	_, c := newStream(t, server.Options{DisableLimits: true}, "reshard", 2)
	p, err := producer.New(c, "reshard", producer.RateLimit(0), producer.MaxBufferedTime(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			if _, err := p.Put(ctx, producer.Record{PartitionKey: "k" + strconv.Itoa(i), Data: idData(uint64(i), 20)}); err != nil {
				t.Error(err)
				return
			}
			if i%1000 == 0 {
				time.Sleep(time.Millisecond) // keep producing while the shards change
			}
		}
	}()
	reshard := func(f func() error) {
		time.Sleep(30 * time.Millisecond)
		for range 3000 { // 30 s at most
			err := f()
			if err == nil {
				return
			}
			if kds.Code(err) != kds.ErrCodeResourceInUse {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("stream never ACTIVE")
	}
	// Split shard 0 in the middle, then merge the upper child with shard 1.
	mid := kds.SplitHashKeySpace(4)[0].End.Add(kds.HashKey{Lo: 1}).String()
	reshard(func() error {
		_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("reshard"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)})
		return err
	})
	reshard(func() error {
		_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("reshard"), ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
		return err
	})
	wg.Wait()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.UserRecordsPut != total || st.ShardMapRefreshes < 2 {
		t.Fatalf("stats %+v", st)
	}
	rb := readAll(t, c, "reshard")
	t.Logf("%d shards, %d refreshes, %d records re-put after landing off their shard, %d dropped by filtering in %d aggregates",
		len(servertest.Shards(t, c, "reshard")), st.ShardMapRefreshes, st.Misrouted, rb.dropped, len(rb.badAgg))
	if int64(rb.dropped) > st.Misrouted {
		t.Fatalf("%d records dropped by hash-range filtering, only %d known to the producer", rb.dropped, st.Misrouted)
	}
	// Exactly once among the records a filtering consumer keeps.
	rb.dropped = 0
	checkOnce(t, rb, total)
}

// TestStalledEndpoint: a Kinesis that accepts no PutRecords. The heap stays
// within the buffer budget, Put fails fast or blocks as configured, records
// expire after the TTL with the cause, and Close fails the rest.
func TestStalledEndpoint(t *testing.T) {
	const budget = 16 << 20
	srv, c := newStream(t, server.Options{}, "stalled", 2)
	srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"PutRecords": 1}})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	t.Run("fail fast", func(t *testing.T) {
		// Two requests in flight at most: their encodings (client and
		// server side) are on top of the budget, and with the default 24
		// they alone can exceed it on a loaded machine.
		p, err := producer.New(c, "stalled", producer.BufferLimits(budget, 1<<20), producer.BufferFullPolicy(producer.FailFast),
			producer.RetryBackoff(time.Millisecond, 10*time.Millisecond), producer.MaxConcurrentRequests(2))
		if err != nil {
			t.Fatal(err)
		}
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var hs []*producer.Pending
		data := make([]byte, 1000) // shared: the producer does not copy
		for i := 0; ; i++ {
			if i > 1_000_000 {
				t.Fatal("budget never reached")
			}
			h, err := p.Put(ctx, producer.Record{PartitionKey: strconv.Itoa(i), Data: data})
			if errors.Is(err, producer.ErrBufferFull) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		// While requests fail and are retried, the live heap (this process
		// holds the server too) stays within the budget plus the encoded
		// copies of the requests in flight.
		var growth int64
		for range 5 {
			time.Sleep(60 * time.Millisecond)
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			growth = max(growth, int64(after.HeapAlloc)-int64(before.HeapAlloc))
		}
		// Each request in flight (2 at most) is live up to 3 times at once
		// when a GC runs, more likely the slower the machine: the client's
		// JSON body (base64: 4/3 of its at most 5 MiB of data), the
		// server's copy of it, and the records it decoded.
		const perRequest = (4*5<<20/3)*2 + 5<<20
		allowed := int64(budget + 2*perRequest)
		t.Logf("%d records buffered; heap grew %d bytes at most for a budget of %d (allowed %d)", len(hs), growth, budget, allowed)
		if growth > allowed {
			t.Fatalf("heap grew %d bytes, budget %d plus 2 requests in flight: %d", growth, budget, allowed)
		}
		closeCtx, cancelClose := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancelClose()
		if err := p.Close(closeCtx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want the deadline", err)
		}
		for i, h := range hs {
			res, ok := h.Result()
			// The last cause is Kinesis's InternalFailure, unless the record's
			// only attempt was still in flight when Close gave up (canceled).
			if !ok || !errors.Is(res.Err, producer.ErrClosed) || !errors.Is(res.Err, context.DeadlineExceeded) ||
				(res.Attempts > 0 && kds.Code(res.Err) != kds.ErrCodeInternalFailure && !(res.Attempts == 1 && errors.Is(res.Err, context.Canceled))) {
				t.Fatalf("record %d after Close: %+v, %v; want ErrClosed wrapping the deadline and the last error", i, res, ok)
			}
		}
	})

	t.Run("block", func(t *testing.T) {
		p, err := producer.New(c, "stalled", producer.BufferLimits(1<<30, 10), producer.RecordTTL(500*time.Millisecond),
			producer.RetryBackoff(time.Millisecond, 10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		var hs []*producer.Pending
		for i := range 10 {
			h, err := p.Put(ctx, producer.Record{PartitionKey: strconv.Itoa(i), Data: []byte("x")})
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = p.Put(short, producer.Record{PartitionKey: "k", Data: []byte("x")})
		cancelShort()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Put on a full buffer = %v, want to block until the deadline", err)
		}
		// The TTL frees the buffer: a blocked Put gets in.
		h, err := p.Put(ctx, producer.Record{PartitionKey: "k", Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range hs {
			res, err := h.Wait(ctx)
			if !errors.Is(err, producer.ErrRecordExpired) || kds.Code(err) != kds.ErrCodeInternalFailure || res.Attempts < 1 {
				t.Fatalf("record %d: %+v %v, want expired after attempts, wrapping InternalFailure", i, res, err)
			}
		}
		closed := make(chan error)
		go func() {
			closeCtx, cancelClose := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancelClose()
			closed <- p.Close(closeCtx)
		}()
		if err := <-closed; err == nil {
			t.Fatal("Close with a record failing returned nil")
		}
		if res, _ := h.Wait(ctx); res.Err == nil {
			t.Fatal("record put before Close has no error")
		}
		if _, err := p.Put(ctx, producer.Record{PartitionKey: "k"}); !errors.Is(err, producer.ErrClosed) {
			t.Fatalf("Put after Close: %v", err)
		}
	})
}

func TestPartitionKeyHelpers(t *testing.T) {
	t.Parallel()
	if producer.HashedKey("user-1") != producer.HashedKey("user-1") || producer.HashedKey("user-1") == producer.HashedKey("user-2") {
		t.Fatal("HashedKey is not a function of the value")
	}
	if k := producer.HashedKey(strings.Repeat("x", 1000)); len(k) != 32 {
		t.Fatalf("HashedKey length %d", len(k))
	}
	if producer.RandomKey() == producer.RandomKey() {
		t.Fatal("RandomKey repeats")
	}
	ranges := kds.SplitHashKeySpace(5)
	for i := range 5 {
		h, err := kds.ParseHashKey(producer.ExplicitHashKey(i, 5))
		if err != nil || !ranges[i].Contains(h) {
			t.Fatalf("slot %d: %v %v", i, h, err)
		}
	}
	// Even spread of hashed keys over 4 shards.
	counts := make([]int, 4)
	r4 := kds.SplitHashKeySpace(4)
	for i := range 40000 {
		h := kds.HashPartitionKey(producer.HashedKey(strconv.Itoa(i)))
		for j, r := range r4 {
			if r.Contains(h) {
				counts[j]++
			}
		}
	}
	for _, n := range counts {
		if n < 9000 || n > 11000 {
			t.Fatalf("uneven spread %v", counts)
		}
	}
}

// TestExplicitHashKeyRouting pins records with explicit hash keys, with
// aggregation: each lands on the chosen shard and keeps its keys.
func TestExplicitHashKeyRouting(t *testing.T) {
	t.Parallel()
	_, c := newStream(t, server.Options{}, "ehk", 3)
	p, err := producer.New(c, "ehk")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var hs []*producer.Pending
	for i := range 300 {
		h, err := p.Put(ctx, producer.Record{PartitionKey: "same", ExplicitHashKey: producer.ExplicitHashKey(i%3, 3), Data: idData(uint64(i), 10)})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		res, _ := h.Result()
		if want := fmt.Sprintf("shardId-%012d", i%3); res.ShardID != want || !res.Aggregated {
			t.Fatalf("record %d: %+v, want aggregated on %s", i, res, want)
		}
	}
	rb := readAll(t, c, "ehk")
	checkOnce(t, rb, 300)
	for _, r := range rb.records {
		if r.PartitionKey != "same" || r.ExplicitHashKey != producer.ExplicitHashKey(int(dataID(r.Data))%3, 3) {
			t.Fatalf("record %d read with keys %q %q", dataID(r.Data), r.PartitionKey, r.ExplicitHashKey)
		}
	}
	_ = servertest.Shards
}
