package server_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// readInLineageOrder reads every shard of a stream, each parent before its
// children, and returns the records in that order.
func readInLineageOrder(t *testing.T, c *kinesis.Client, stream string) []types.Record {
	t.Helper()
	shards := servertest.Shards(t, c, stream)
	done := map[string]bool{}
	var out []types.Record
	for progress := true; progress; {
		progress = false
		for _, sh := range shards {
			id := aws.ToString(sh.ShardId)
			if done[id] {
				continue
			}
			ready := true
			for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if p != nil && !done[*p] && hasShard(shards, *p) {
					ready = false
				}
			}
			if !ready {
				continue
			}
			out = append(out, servertest.ReadShard(t, c, stream, id)...)
			done[id] = true
			progress = true
		}
	}
	if len(done) != len(shards) {
		t.Fatalf("read %d of %d shards: lineage has a cycle or a gap", len(done), len(shards))
	}
	return out
}

func hasShard(shards []types.Shard, id string) bool {
	for _, s := range shards {
		if aws.ToString(s.ShardId) == id {
			return true
		}
	}
	return false
}

func TestReshardingWhileRecordsFlowKeepsPerKeyOrder(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "flow", 2)

	const keys = 40
	var (
		wg         sync.WaitGroup
		stop       = make(chan struct{})
		sent       [keys]int
		perr       error
		done       atomic.Int64 // rounds put so far
		writerDone atomic.Bool
	)
	// waitRounds lets the writer put n more rounds (bounded in time).
	waitRounds := func(n int64) {
		target := done.Load() + n
		for deadline := time.Now().Add(20 * time.Second); done.Load() < target && time.Now().Before(deadline) && !writerDone.Load(); {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Add(1)
	go func() { // one writer, so each key's put order is its call order
		defer wg.Done()
		defer writerDone.Store(true)
		for round := 0; round < 2000; round++ {
			select {
			case <-stop:
				return
			default:
			}
			var entries []types.PutRecordsRequestEntry
			for k := range keys {
				entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("key", k)), Data: fmt.Appendf(nil, "%d:%d", k, sent[k]+len(entriesFor(entries, k)))})
			}
			out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("flow"), Records: entries})
			if err != nil {
				perr = err
				return
			}
			if aws.ToInt32(out.FailedRecordCount) != 0 {
				perr = fmt.Errorf("%d entries failed", aws.ToInt32(out.FailedRecordCount))
				return
			}
			for k := range keys {
				sent[k]++
			}
			done.Add(1)
		}
	}()

	// Reshape while records flow: split, merge, scale up, scale down.
	mid := "85070591730234615865843651857942052864" // 2^126, inside shard 0
	waitRounds(25)
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("flow"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	waitRounds(25)
	if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("flow"), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000003")}); err != nil {
		t.Fatal(err)
	}
	waitRounds(25)
	if _, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("flow"), TargetShardCount: aws.Int32(3), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
		t.Fatal(err)
	}
	waitRounds(25)
	out, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("flow"), TargetShardCount: aws.Int32(2), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil || aws.ToInt32(out.CurrentShardCount) != 3 || aws.ToInt32(out.TargetShardCount) != 2 {
		t.Fatalf("UpdateShardCount: %v %+v", err, out)
	}
	waitRounds(25)
	close(stop)
	wg.Wait()
	if perr != nil {
		t.Fatal(perr)
	}

	// Open shards: two even halves; closed shards carry an EndingSequenceNumber.
	shards := servertest.Shards(t, c, "flow")
	var open []types.Shard
	for _, sh := range shards {
		if sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, sh)
		}
		if sh.ParentShardId == nil && sh.AdjacentParentShardId != nil {
			t.Fatalf("shard %s has an adjacent parent but no parent", aws.ToString(sh.ShardId))
		}
	}
	sort.Slice(open, func(i, j int) bool {
		return len(*open[i].HashKeyRange.StartingHashKey) < len(*open[j].HashKeyRange.StartingHashKey)
	})
	if len(open) != 2 || aws.ToString(open[0].HashKeyRange.EndingHashKey) != "170141183460469231731687303715884105727" {
		t.Fatalf("open shards after scaling to 2: %+v", open)
	}

	// Parents before children: every key's records in put order, none lost, none twice.
	got := make([][]int, keys)
	for _, r := range readInLineageOrder(t, c, "flow") {
		k, n, _ := strings.Cut(string(r.Data), ":")
		ki, _ := strconv.Atoi(k)
		ni, _ := strconv.Atoi(n)
		got[ki] = append(got[ki], ni)
	}
	for k := range keys {
		if len(got[k]) != sent[k] {
			t.Fatalf("key %d: read %d records, put %d", k, len(got[k]), sent[k])
		}
		for i, n := range got[k] {
			if n != i {
				t.Fatalf("key %d: record %d is #%d: order broken or duplicate", k, i, n)
			}
		}
	}
	t.Logf("%d records per key across %d shards", sent[0], len(shards))

	// Reading a closed parent to its end names its children.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("flow"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		t.Fatal(err)
	}
	gr, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if gr.NextShardIterator != nil || len(gr.ChildShards) != 2 || aws.ToString(gr.ChildShards[0].ShardId) != "shardId-000000000002" ||
		len(gr.ChildShards[0].ParentShards) != 1 || gr.ChildShards[0].ParentShards[0] != "shardId-000000000000" {
		t.Fatalf("end of closed shard: next=%v children=%+v", gr.NextShardIterator, gr.ChildShards)
	}

	// ShardFilter: AT_LATEST is the open shards; AT_TRIM_HORIZON the original ones.
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("flow"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil || len(ls.Shards) != 2 {
		t.Fatalf("AT_LATEST: %v %d shards", err, len(ls.Shards))
	}
	ls, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("flow"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}})
	if err != nil || len(ls.Shards) != 2 || aws.ToString(ls.Shards[0].ShardId) != "shardId-000000000000" || aws.ToString(ls.Shards[1].ShardId) != "shardId-000000000001" {
		t.Fatalf("AT_TRIM_HORIZON: %v %+v", err, ls.Shards)
	}
	ls, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("flow"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}})
	if err != nil || len(ls.Shards) != len(shards) {
		t.Fatalf("FROM_TRIM_HORIZON: %v %d of %d", err, len(ls.Shards), len(shards))
	}
}

func entriesFor(entries []types.PutRecordsRequestEntry, k int) []types.PutRecordsRequestEntry {
	var out []types.PutRecordsRequestEntry
	for _, e := range entries {
		if aws.ToString(e.PartitionKey) == fmt.Sprint("key", k) {
			out = append(out, e)
		}
	}
	return out
}

func TestInvalidReshards(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true, ShardLimit: 4})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "r", 2)
	split := func(shard, key string) error {
		_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("r"), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(key)})
		return err
	}
	wantCode(t, split("shardId-000000000000", "0"), kds.ErrCodeInvalidArgument, "not both greater than one plus the shard's StartingHashKey")
	wantCode(t, split("shardId-000000000000", "170141183460469231731687303715884105728"), kds.ErrCodeInvalidArgument, "NewStartingHashKey")
	wantCode(t, split("shardId-000000000009", "5"), kds.ErrCodeResourceNotFound, "shardId-000000000009")
	wantCode(t, split("shardId-000000000000", "abc"), kds.ErrCodeValidation, "newStartingHashKey")
	if err := split("shardId-000000000000", "1000"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, split("shardId-000000000000", "2000"), kds.ErrCodeInvalidArgument, "already been merged or split")
	// 3 open shards, limit 4: one more split fits, the next does not.
	if err := split("shardId-000000000001", "200000000000000000000000000000000000000"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, split("shardId-000000000002", "500"), kds.ErrCodeLimitExceeded, "shard limit")
	_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("r"), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000004")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "not an adjacent pair")
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("r"), ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "already been merged or split")
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("r"), TargetShardCount: aws.Int32(9), ScalingType: types.ScalingTypeUniformScaling})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "between half and double")
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("r"), TargetShardCount: aws.Int32(2), ScalingType: "SIDEWAYS"})
	wantCode(t, err, kds.ErrCodeValidation, "scalingType")
}
