package server_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// putAll puts entries, re-putting the entries that failed (with back-off)
// until all are in. It returns how many entries were throttled on the way.
func putAll(t *testing.T, c *kinesis.Client, stream string, entries []types.PutRecordsRequestEntry) (throttled int) {
	t.Helper()
	ctx := context.Background()
	pending := entries
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 200 {
			t.Fatalf("%d entries still failing after %d attempts", len(pending), attempt)
		}
		if attempt > 0 {
			time.Sleep(time.Duration(min(attempt, 10)) * 20 * time.Millisecond)
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: pending})
		if err != nil {
			t.Fatal(err)
		}
		var retry []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				if aws.ToString(r.ErrorCode) != kds.ErrCodeProvisionedThroughput {
					t.Fatalf("entry failed with %s: %s", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
				}
				retry = append(retry, pending[i])
			}
		}
		if int(aws.ToInt32(out.FailedRecordCount)) != len(retry) {
			t.Fatalf("FailedRecordCount %d, but %d entries carry errors", aws.ToInt32(out.FailedRecordCount), len(retry))
		}
		throttled += len(retry)
		pending = retry
	}
	return throttled
}

func TestWriteLimitThrottlesAndRetriesLoseNothing(t *testing.T) {
	clk := &clock{}
	srv := servertest.Start(t, server.Options{Now: clk.now})
	c := servertest.Client(t, srv, servertest.NoRetries)
	servertest.CreateStream(t, c, "limited", 1)

	// 3,000 records at once: the shard takes 1,000 records a second, so the
	// first burst is partly throttled; retrying the failed entries gets all in.
	var entries []types.PutRecordsRequestEntry
	var batches [][]types.PutRecordsRequestEntry
	for i := range 3000 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte(fmt.Sprintf("r%05d", i))})
		if len(entries) == 500 {
			batches = append(batches, entries)
			entries = nil
		}
	}
	throttled := 0
	for _, b := range batches {
		throttled += putAll(t, c, "limited", b)
	}
	if throttled == 0 {
		t.Fatal("3,000 records in a burst to one shard were never throttled")
	}
	// Reading is limited too, so read with a client that retries.
	reader := servertest.Client(t, srv, func(o *kinesis.Options) { o.RetryMaxAttempts = 20 })
	got := servertest.ReadShard(t, reader, "limited", "shardId-000000000000")
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Data)]++
	}
	if len(got) != 3000 || len(seen) != 3000 {
		t.Fatalf("read %d records (%d distinct), want 3000 once each", len(got), len(seen))
	}
	t.Logf("%d entries throttled and retried", throttled)

	// Bytes: 1 MiB/s per shard. Three 400 KB records in one call: the third is throttled.
	clk.advance(2 * time.Second) // refill both buckets, debt from the reads included
	big := make([]types.PutRecordsRequestEntry, 3)
	for i := range big {
		big[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("b"), Data: make([]byte, 400_000)}
	}
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("limited"), Records: big})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 1 || out.Records[2].ErrorCode == nil || out.Records[0].ErrorCode != nil {
		t.Fatalf("byte limit: %+v", out.Records)
	}
}

func TestReadLimitThrottlesGetRecords(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	c := servertest.Client(t, srv, servertest.NoRetries)
	servertest.CreateStream(t, c, "reads", 1)
	ctx := context.Background()
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("reads"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		t.Fatal(err)
	}
	var throttled error
	iter := it.ShardIterator
	for i := 0; i < 20 && throttled == nil; i++ {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			throttled = err
			break
		}
		iter = out.NextShardIterator
	}
	wantCode(t, throttled, kds.ErrCodeProvisionedThroughput, "Rate exceeded for shard shardId-000000000000")
	if !kds.IsRetryable(throttled) || !kds.IsThrottle(throttled) {
		t.Fatal("a throughput error must be retryable and a throttle")
	}
}

func TestFaultInjection(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true, Faults: server.Faults{Throttle: []string{"f/shardId-000000000001"}}})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "f", 2)

	// Forced throttling of one shard: its entries fail, the other shard's pass.
	entries := []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("x"), Data: []byte("low"), ExplicitHashKey: aws.String("0")},
		{PartitionKey: aws.String("x"), Data: []byte("high"), ExplicitHashKey: aws.String("340282366920938463463374607431768211455")},
	}
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("f"), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 1 || out.Records[0].ErrorCode != nil || aws.ToString(out.Records[1].ErrorCode) != kds.ErrCodeProvisionedThroughput {
		t.Fatalf("forced throttle: %+v", out.Records)
	}
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("f"), ShardId: aws.String("shardId-000000000001"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}

	// An error rate of 1 fails every PutRecords call and nothing else.
	if err := srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"PutRecords": 1}, ErrorCode: kds.ErrCodeServiceUnavailable}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("f"), Records: entries})
	wantCode(t, err, kds.ErrCodeServiceUnavailable, "injected")
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("f"), PartitionKey: aws.String("k"), Data: []byte("ok")}); err != nil {
		t.Fatalf("PutRecord with PutRecords faults: %v", err)
	}

	// Latency: a caller whose deadline is shorter than the injected latency times out.
	if err := srv.SetFaults(server.Faults{Latency: time.Second}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.ListStreams(short, &kinesis.ListStreamsInput{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with 1 s injected latency and a 50 ms deadline: %v", err)
	}
	for _, bad := range []server.Faults{
		{ErrorRate: map[string]float64{"PutRecords": 2}},
		{ErrorRate: map[string]float64{"PutRecrd": 1}},          // a typo would never fire
		{ErrorRate: map[string]float64{"GetResourcePolicy": 1}}, // not served by ksp
		{ErrorCode: "NotARealCode"},
	} {
		if err := srv.SetFaults(bad); err == nil {
			t.Errorf("faults %+v were accepted", bad)
		}
		if _, err := server.New(server.Options{Faults: bad}); err == nil {
			t.Errorf("server.New accepted faults %+v", bad)
		}
	}
	if err := srv.SetFaults(server.Faults{ErrorRate: map[string]float64{"*": 0.5, "GetRecords": 0}, ErrorCode: kds.ErrCodeProvisionedThroughput}); err != nil {
		t.Fatalf("valid faults refused: %v", err)
	}
	if err := srv.SetFaults(server.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("f"), Records: entries}); err != nil {
		t.Fatal(err)
	}
}
