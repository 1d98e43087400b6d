package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server/servertest"
)

// crashRecord is what a record was when first seen.
type crashRecord struct {
	shard, seq string
	arrival    time.Time
}

// TestServerCrash puts records into `ksp server --fsync always` from several
// goroutines, kills the process with SIGKILL at a random moment, restarts it
// on the same data dir, and checks that every acknowledged record is there,
// in order, once, with its sequence number and arrival time, and that
// nothing was stored that was never sent. Four rounds.
func TestServerCrash(t *testing.T) {
	const (
		rounds  = 4
		writers = 4
		batch   = 25
		stream  = "crash"
	)
	dir := t.TempDir()
	ctx := context.Background()
	var (
		mu    sync.Mutex               // guards: sent, acked
		sent  = map[string]bool{}      // data of every record ever sent
		acked = map[string][2]string{} // data -> shard, sequence number of acknowledged records
	)
	seen := map[string]crashRecord{} // every record read back so far
	next := 0                        // unique record counter across rounds

	for round := 0; round <= rounds; round++ {
		srv := startChild(t, "--data-dir", dir, "--fsync", "always", "--limits", "off")
		want := "storage: data dir " + dir + ", fsync always"
		for i := 0; i < 3000 && !strings.Contains(srv.output(), want); i++ { // the line after the endpoint's
			time.Sleep(10 * time.Millisecond)
		}
		if out := srv.output(); !strings.Contains(out, want) {
			t.Fatalf("startup lines do not name the data dir:\n%s", out)
		}
		c := crashClient(srv.endpoint)
		if round == 0 {
			if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(3)}); err != nil {
				t.Fatal(err)
			}
			if err := servertest.WaitActive(ctx, c, stream); err != nil {
				t.Fatal(err)
			}
		}
		checkCrashStream(t, c, stream, round, sent, acked, seen)
		if round == rounds {
			srv.stop(t, syscall.SIGTERM)
			break
		}

		loadCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			base := next + w*1_000_000
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; loadCtx.Err() == nil && n < 1000; n++ { // bounded: ~100 calls per writer per round suffice
					entries := make([]types.PutRecordsRequestEntry, batch)
					mu.Lock()
					for i := range entries {
						data := fmt.Sprintf("r%d-w%d-n%d", base+n*batch+i, w, n)
						sent[data] = true
						entries[i] = types.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: aws.String(data)}
					}
					mu.Unlock()
					out, err := c.PutRecords(loadCtx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
					if err != nil {
						return // the server was killed (or the round ended): in flight, maybe stored
					}
					mu.Lock()
					for i, r := range out.Records {
						if r.ErrorCode == nil {
							acked[string(entries[i].Data)] = [2]string{aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)}
						}
					}
					mu.Unlock()
				}
			}()
		}
		next += writers * 1_000_000
		time.Sleep(time.Duration(150+rand.IntN(500)) * time.Millisecond) // a random moment under load
		srv.stop(t, syscall.SIGKILL)
		stop()
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: killed with %d records acknowledged in total, %d sent", round, len(acked), len(sent))
		mu.Unlock()
	}
	if len(acked) == 0 {
		t.Fatal("no record was acknowledged")
	}
}

// crashClient is a Kinesis client over h2c without retries, so that a record
// is sent at most once per attempt the test knows about.
func crashClient(endpoint string) *kinesis.Client {
	return servertest.NewClient(endpoint, "us-east-1", servertest.NoRetries, func(o *kinesis.Options) {
		o.HTTPClient = sdkhttp.NewH2C()
	})
}

// checkCrashStream reads every shard of the stream and checks it against
// what was sent, acknowledged and read before.
func checkCrashStream(t *testing.T, c *kinesis.Client, stream string, round int, sent map[string]bool, acked map[string][2]string, seen map[string]crashRecord) {
	t.Helper()
	ctx := context.Background()
	read := map[string]bool{}
	for _, sh := range servertest.Shards(t, c, stream) {
		shardID := aws.ToString(sh.ShardId)
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter, last := it.ShardIterator, ""
		for calls := 0; iter != nil; calls++ {
			if calls > 10_000 {
				t.Fatalf("shard %s: no end after %d GetRecords calls", shardID, calls)
			}
			page, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("round %d: GetRecords %s: %v", round, shardID, err)
			}
			for _, r := range page.Records {
				data, seq := string(r.Data), aws.ToString(r.SequenceNumber)
				if !sent[data] {
					t.Fatalf("round %d: shard %s holds %q, which was never sent", round, shardID, data)
				}
				if read[data] {
					t.Fatalf("round %d: %q read twice", round, data)
				}
				read[data] = true
				if !seqLess(last, seq) {
					t.Fatalf("round %d: shard %s out of order: %s after %s", round, shardID, seq, last)
				}
				last = seq
				if a, ok := acked[data]; ok && (a[0] != shardID || a[1] != seq) {
					t.Fatalf("round %d: %q read at %s/%s, acknowledged at %s/%s", round, data, shardID, seq, a[0], a[1])
				}
				rec := crashRecord{shardID, seq, *r.ApproximateArrivalTimestamp}
				if prev, ok := seen[data]; ok && prev != rec {
					t.Fatalf("round %d: %q changed across a restart: %+v, was %+v", round, data, rec, prev)
				}
				seen[data] = rec
			}
			if len(page.Records) == 0 && aws.ToInt64(page.MillisBehindLatest) == 0 {
				break
			}
			iter = page.NextShardIterator
		}
	}
	for data, a := range acked {
		if !read[data] {
			t.Fatalf("round %d: acknowledged record %q (%s/%s) lost", round, data, a[0], a[1])
		}
	}
	for data := range seen {
		if !read[data] {
			t.Fatalf("round %d: record %q, read after an earlier restart, is gone", round, data)
		}
	}
	t.Logf("round %d: %d records read back, %d acknowledged", round, len(read), len(acked))
}

// seqLess compares decimal sequence numbers ("" is below all).
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
