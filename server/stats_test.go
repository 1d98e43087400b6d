package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestMetricsCountPutsReadsAndThrottles puts, reads and is throttled through
// the SDK, then reads the counters over HTTP (signatures on, which the
// metrics endpoint does not need) and checks each against what was done.
func TestMetricsCountPutsReadsAndThrottles(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t, server.Options{Credentials: map[string]string{"ksp": "ksp"}})
	c := servertest.Client(t, srv)
	servertest.CreateStream(t, c, "m", 2)
	shards := servertest.Shards(t, c, "m")

	// Seven records in one PutRecords, each to a chosen shard by explicit
	// hash key, and one PutRecord.
	var entries []types.PutRecordsRequestEntry
	want := map[string]int{}
	bytesPerShard := map[string]int{}
	for i := range 7 {
		sh := shards[i%2]
		e := types.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf("record-%d", i)), PartitionKey: aws.String("k"), ExplicitHashKey: sh.HashKeyRange.StartingHashKey}
		entries = append(entries, e)
		want[*sh.ShardId]++
		bytesPerShard[*sh.ShardId] += len(e.Data) + 1
	}
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("m"), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v %v", out, err)
	}
	one := []byte("single")
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("m"), Data: one, PartitionKey: aws.String("k"), ExplicitHashKey: shards[0].HashKeyRange.StartingHashKey}); err != nil {
		t.Fatal(err)
	}
	want[*shards[0].ShardId]++
	bytesPerShard[*shards[0].ShardId] += len(one) + 1

	// Read shard 0 whole; a throttled shard 1 refuses a put and a read.
	got := servertest.ReadShard(t, c, "m", *shards[0].ShardId)
	if len(got) != want[*shards[0].ShardId] {
		t.Fatalf("read %d records of shard 0, want %d", len(got), want[*shards[0].ShardId])
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("m"), ShardId: shards[1].ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetFaults(server.Faults{Throttle: []string{"m/" + *shards[1].ShardId}}); err != nil {
		t.Fatal(err)
	}
	thr, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("m"), Records: entries[1:2]}) // entry 1 goes to shard 1
	if err != nil || aws.ToInt32(thr.FailedRecordCount) != 1 {
		t.Fatalf("throttled PutRecords: %v %v", thr, err)
	}
	if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}, servertest.NoRetries); err == nil {
		t.Fatal("GetRecords of a throttled shard succeeded")
	}

	snap, err := metrics.Fetch(ctx, nil, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	sm := snap.Stream("m")
	if sm == nil || sm.OpenShards != 2 || len(sm.Shards) != 2 || sm.Mode != "PROVISIONED" {
		t.Fatalf("stream metrics %+v", sm)
	}
	sh0, sh1 := sm.Shard(*shards[0].ShardId), sm.Shard(*shards[1].ShardId)
	total := want[*shards[0].ShardId] + want[*shards[1].ShardId]
	allBytes := bytesPerShard[*shards[0].ShardId] + bytesPerShard[*shards[1].ShardId]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"stream IncomingRecords", sm.Counters[metrics.IncomingRecords], float64(total)},
		{"stream IncomingBytes", sm.Counters[metrics.IncomingBytes], float64(allBytes)},
		{"PutRecords.Success", sm.Counters[metrics.PutRecordsSuccess], 2},
		{"PutRecords.TotalRecords", sm.Counters[metrics.PutRecordsTotalRecords], 8},
		{"PutRecords.SuccessfulRecords", sm.Counters[metrics.PutRecordsSuccessfulRecords], 7},
		{"PutRecords.ThrottledRecords", sm.Counters[metrics.PutRecordsThrottledRecords], 1},
		{"PutRecords.FailedRecords", sm.Counters[metrics.PutRecordsFailedRecords], 0},
		{"PutRecord.Success", sm.Counters[metrics.PutRecordSuccess], 1},
		{"PutRecord.Bytes", sm.Counters[metrics.PutRecordBytes], float64(len(one) + 1)},
		{"stream WriteProvisionedThroughputExceeded", sm.Counters[metrics.WriteProvisionedThroughputExceeded], 1},
		{"stream ReadProvisionedThroughputExceeded", sm.Counters[metrics.ReadProvisionedThroughputExceeded], 1},
		{"GetRecords.Records", sm.Counters[metrics.GetRecordsRecords], float64(len(got))},
		{"shard 0 IncomingRecords", sh0.Counters[metrics.IncomingRecords], float64(want[*shards[0].ShardId])},
		{"shard 0 IncomingBytes", sh0.Counters[metrics.IncomingBytes], float64(bytesPerShard[*shards[0].ShardId])},
		{"shard 0 OutgoingRecords", sh0.Counters[metrics.OutgoingRecords], float64(len(got))},
		{"shard 0 OutgoingBytes", sh0.Counters[metrics.OutgoingBytes], float64(bytesPerShard[*shards[0].ShardId])},
		{"shard 1 IncomingRecords", sh1.Counters[metrics.IncomingRecords], float64(want[*shards[1].ShardId])},
		{"shard 1 WriteProvisionedThroughputExceeded", sh1.Counters[metrics.WriteProvisionedThroughputExceeded], 1},
		{"shard 1 ReadProvisionedThroughputExceeded", sh1.Counters[metrics.ReadProvisionedThroughputExceeded], 1},
		{"shard 1 OutgoingRecords", sh1.Counters[metrics.OutgoingRecords], 0},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if n := sm.Counters[metrics.GetRecordsSuccess]; n < 1 {
		t.Errorf("GetRecords.Success = %v, want at least 1", n)
	}
	for _, name := range metrics.StreamCounters {
		if _, ok := sm.Counters[name]; !ok {
			t.Errorf("stream counter %s missing", name)
		}
	}

	// The in-process snapshot is the same document.
	if in := srv.Metrics().Stream("m"); in.Counters[metrics.IncomingRecords] != float64(total) {
		t.Errorf("Metrics() IncomingRecords = %v, want %d", in.Counters[metrics.IncomingRecords], total)
	}
}
