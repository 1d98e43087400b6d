package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex // guards: t
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDisk(t *testing.T, dir string, opts store.DiskOptions) *store.Disk {
	t.Helper()
	d, err := store.OpenDisk(dir, opts)
	if err != nil {
		t.Fatalf("OpenDisk: %v", err)
	}
	return d
}

// TestRestartKeepsStreamsAndRecords closes a server on a disk store and opens
// a new one on the same directory: streams, records (with their sequence
// numbers and arrival times) and iterators issued before the restart remain.
func TestRestartKeepsStreamsAndRecords(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv := servertest.Start(t, server.Options{Store: openDisk(t, dir, store.DiskOptions{}), DisableLimits: true})
	c := servertest.Client(t, srv, servertest.NoRetries)
	servertest.CreateStream(t, c, "durable", 2)
	if _, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("durable"), Tags: map[string]string{"team": "a"}}); err != nil {
		t.Fatal(err)
	}
	entries := make([]types.PutRecordsRequestEntry, 50)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "record-%d", i), PartitionKey: aws.String(fmt.Sprint("key-", i))}
	}
	put, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("durable"), Records: entries})
	if err != nil || aws.ToInt32(put.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v %v", err, put)
	}
	before := map[string][]types.Record{}
	iters := map[string]*string{}
	for _, sh := range servertest.Shards(t, c, "durable") {
		id := aws.ToString(sh.ShardId)
		before[id] = servertest.ReadShard(t, c, "durable", id)
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("durable"), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iters[id] = it.ShardIterator
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	srv2 := servertest.Start(t, server.Options{Store: openDisk(t, dir, store.DiskOptions{}), DisableLimits: true})
	c2 := servertest.Client(t, srv2, servertest.NoRetries)
	tags, err := c2.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("durable")})
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("tags after restart: %v %v", tags, err)
	}
	total := 0
	for id, want := range before {
		got := servertest.ReadShard(t, c2, "durable", id)
		if len(got) != len(want) {
			t.Fatalf("shard %s: %d records after restart, want %d", id, len(got), len(want))
		}
		for i := range want {
			if aws.ToString(got[i].SequenceNumber) != aws.ToString(want[i].SequenceNumber) ||
				!got[i].ApproximateArrivalTimestamp.Equal(*want[i].ApproximateArrivalTimestamp) ||
				string(got[i].Data) != string(want[i].Data) || aws.ToString(got[i].PartitionKey) != aws.ToString(want[i].PartitionKey) {
				t.Fatalf("shard %s record %d changed across restart: %+v, want %+v", id, i, got[i], want[i])
			}
		}
		// The iterator from the first server still reads from the start.
		page, err := c2.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iters[id]})
		if err != nil {
			t.Fatalf("GetRecords with a pre-restart iterator: %v", err)
		}
		if len(page.Records) != len(want) {
			t.Fatalf("pre-restart iterator read %d records, want %d", len(page.Records), len(want))
		}
		total += len(want)
	}
	if total != len(entries) {
		t.Fatalf("read %d records, put %d", total, len(entries))
	}
	// New records continue the sequence.
	p, err := c2.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("durable"), Data: []byte("after"), PartitionKey: aws.String("key-0")})
	if err != nil {
		t.Fatal(err)
	}
	last := before[aws.ToString(p.ShardId)]
	if aws.ToString(p.SequenceNumber) <= aws.ToString(last[len(last)-1].SequenceNumber) {
		t.Fatalf("sequence after restart %s not above %s", aws.ToString(p.SequenceNumber), aws.ToString(last[len(last)-1].SequenceNumber))
	}
}

// TestRetention trims records past the retention period, moving
// TRIM_HORIZON, and expires closed shards whose life is past it.
func TestRetention(t *testing.T) {
	for _, kind := range []string{"memory", "disk"} {
		t.Run(kind, func(t *testing.T) {
			clock := &testClock{t: time.Now()}
			opts := server.Options{Now: clock.Now, DisableLimits: true, RetentionInterval: -1}
			if kind == "disk" {
				// One record per segment, so trimming is exact.
				opts.Store = openDisk(t, t.TempDir(), store.DiskOptions{SegmentBytes: 1})
			}
			srv := servertest.Start(t, opts)
			c := servertest.Client(t, srv, servertest.NoRetries)
			ctx := context.Background()
			name := aws.String("aging")
			servertest.CreateStream(t, c, "aging", 1)
			put := func(data string) {
				t.Helper()
				if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, Data: []byte(data), PartitionKey: aws.String("k")}); err != nil {
					t.Fatal(err)
				}
			}
			read := func(shardID string) []string {
				t.Helper()
				var out []string
				for _, r := range servertest.ReadShard(t, c, "aging", shardID) {
					out = append(out, string(r.Data))
				}
				return out
			}
			put("old-1")
			put("old-2")
			clock.Add(23 * time.Hour)
			put("young")
			clock.Add(2 * time.Hour) // old-* are 25 h old, young 2 h
			if err := srv.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
			if got := read("shardId-000000000000"); strings.Join(got, ",") != "young" {
				t.Fatalf("after trimming, TRIM_HORIZON reads %v, want [young]", got)
			}

			// Split the shard: the parent closes now and expires 24 h later.
			sh := servertest.Shards(t, c, "aging")[0]
			mid := "170141183460469231731687303715884105728"
			if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid)}); err != nil {
				t.Fatal(err)
			}
			if err := servertest.WaitActive(ctx, c, "aging"); err != nil {
				t.Fatal(err)
			}
			clock.Add(23 * time.Hour)
			if err := srv.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
			if n := len(servertest.Shards(t, c, "aging")); n != 3 {
				t.Fatalf("%d shards listed 23 h after the split, want 3", n)
			}
			clock.Add(2 * time.Hour)
			if err := srv.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
			for _, s := range servertest.Shards(t, c, "aging") {
				if aws.ToString(s.ShardId) == "shardId-000000000000" {
					t.Fatal("ListShards still lists the expired parent shard")
				}
			}
			d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: name})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(d.StreamDescription.Shards); n != 2 || aws.ToBool(d.StreamDescription.HasMoreShards) {
				t.Fatalf("DescribeStream lists %d shards (more: %v), want the 2 children", n, aws.ToBool(d.StreamDescription.HasMoreShards))
			}
			_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			wantCode(t, err, kds.ErrCodeResourceNotFound, "shardId-000000000000")
		})
	}
}

// TestStreamNamesStayInDataDir creates streams whose names look like path
// elements and checks that every file the store writes is inside its dir.
func TestStreamNamesStayInDataDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	srv := servertest.Start(t, server.Options{Store: openDisk(t, dir, store.DiskOptions{}), DisableLimits: true})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	for _, name := range []string{"..", ".", "a..b", "...", "-.-"} {
		servertest.CreateStream(t, c, name, 1)
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), Data: []byte(name), PartitionKey: aws.String("k")}); err != nil {
			t.Fatalf("PutRecord %q: %v", name, err)
		}
		recs := servertest.ReadShard(t, c, name, "shardId-000000000000")
		if len(recs) != 1 || string(recs[0].Data) != name {
			t.Fatalf("stream %q reads %v", name, recs)
		}
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "data" {
		t.Fatalf("files outside the data dir: %v", ents)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 {
			t.Errorf("symlink in data dir: %s", p)
		}
		if rel, err := filepath.Rel(dir, p); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s escapes %s", p, dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
