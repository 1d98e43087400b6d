package producer_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestMillionRecords puts 1,000,000 user records with aggregation, reads
// them back with GetRecords and deaggregates them with hash-range
// filtering: each arrives exactly once, under its own partition key, on the
// shard its key maps to, and every handle got a matching result.
func TestMillionRecords(t *testing.T) {
	const (
		total   = 1_000_000
		writers = 4
		users   = 50_000
	)
	_, c := newStream(t, server.Options{DisableLimits: true}, "million", 4)
	shards := servertest.Shards(t, c, "million")
	shardOf := func(pk string) string {
		h := kds.HashPartitionKey(pk)
		for _, s := range shards {
			start, _ := kds.ParseHashKey(*s.HashKeyRange.StartingHashKey)
			end, _ := kds.ParseHashKey(*s.HashKeyRange.EndingHashKey)
			if (kds.HashKeyRange{Start: start, End: end}).Contains(h) {
				return *s.ShardId
			}
		}
		t.Fatalf("no shard for %q", pk)
		return ""
	}
	keys := make([]string, users)
	keyShard := make([]string, users)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
		keyShard[i] = shardOf(keys[i])
	}

	hooks := new(counter)
	p, err := producer.New(c, "million", producer.RateLimit(0), producer.WithHooks(hooks))
	if err != nil {
		t.Fatal(err)
	}
	// No deadline of its own: a loaded machine may take minutes, which is
	// slow, not wrong. A hang still fails, before the test binary's timeout.
	ctx, cancel := untilTestDeadline(t)
	defer cancel()
	// Whatever ends the test, the producer stops before the next test runs.
	defer func() {
		closeCtx, cancelClose := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancelClose()
		p.Close(closeCtx)
	}()

	type put struct {
		id uint64
		h  *producer.Pending
	}
	handles := make(chan put, 65536)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := uint64(w); id < total; id += writers {
				h, err := p.Put(ctx, producer.Record{PartitionKey: keys[id%users], Data: idData(id, 8)})
				if err != nil {
					if ctx.Err() == nil { // else the reader failed and canceled
						t.Errorf("Put %d: %v", id, err)
					}
					return
				}
				handles <- put{id, h}
			}
		}()
	}
	go func() { wg.Wait(); close(handles) }()
	// Should a check below fail, the writers stop (canceled) and are
	// waited for: none outlives the test.
	defer func() {
		cancel()
		for range handles {
		}
	}()
	results := 0
	for ph := range handles {
		res, err := ph.h.Wait(ctx)
		if err != nil {
			t.Fatalf("record %d: %v", ph.id, err)
		}
		if want := keyShard[ph.id%users]; res.ShardID != want {
			t.Fatalf("record %d: result on %s, its key maps to %s", ph.id, res.ShardID, want)
		}
		if res.SequenceNumber == "" || res.Attempts != 1 {
			t.Fatalf("record %d: result %+v", ph.id, res)
		}
		results++
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	st := p.Stats()
	t.Logf("%d records in %s (%.0f/s): %d Kinesis records in %d requests, %.0f user records per Kinesis record",
		total, elapsed, total/elapsed.Seconds(), st.KinesisRecordsPut, st.Requests, float64(total)/float64(st.KinesisRecordsPut))
	if results != total || st.UserRecordsPut != total || hooks.put.Load() != total || hooks.received.Load() != total {
		t.Fatalf("results %d, stats %+v, hook put %d received %d", results, st, hooks.put.Load(), hooks.received.Load())
	}
	if st.KinesisRecordsPut*100 > total {
		t.Fatalf("%d Kinesis records for %d user records: aggregation did not pack", st.KinesisRecordsPut, total)
	}

	rb := readAll(t, c, "million")
	if rb.dropped != 0 {
		t.Fatalf("%d user records outside their container's shard (aggregates %v)", rb.dropped, rb.badAgg)
	}
	seen := make([]bool, total)
	for _, r := range rb.records {
		id := dataID(r.Data)
		if id >= total || seen[id] {
			t.Fatalf("record %d read twice or unknown", id)
		}
		seen[id] = true
		if want := keys[id%users]; r.PartitionKey != want {
			t.Fatalf("record %d read with partition key %q, put with %q", id, r.PartitionKey, want)
		}
		if want := keyShard[id%users]; r.shardID != want {
			t.Fatalf("record %d read from %s, its key maps to %s", id, r.shardID, want)
		}
	}
	if len(rb.records) != total {
		t.Fatalf("read %d user records, put %d", len(rb.records), total)
	}
}
