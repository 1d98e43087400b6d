package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
	"github.com/ksp-project/ksp/server/store/storetest"
)

// faultServer is a server on a disk store whose file system injects faults,
// with a ledger of every record it acknowledged.
type faultServer struct {
	t     *testing.T
	dir   string
	fs    *storetest.FaultFS // nil: the operating system's
	disk  store.DiskOptions
	srv   *server.Server
	c     *kinesis.Client
	mu    sync.Mutex                   // guards: acked
	acked map[string]map[string]string // stream -> sequence number -> data
	n     int
	pad   int // bytes added to each record's data
	logs  storetest.LogBuffer
}

func startFaultServer(t *testing.T, dir string) *faultServer {
	t.Helper()
	f := &faultServer{t: t, dir: dir, fs: &storetest.FaultFS{}, acked: map[string]map[string]string{}}
	f.start()
	return f
}

func (f *faultServer) start() {
	f.t.Helper()
	opts := f.disk
	opts.RetryInterval = 10 * time.Millisecond
	if f.fs != nil {
		opts.FS = f.fs
	}
	d, err := store.OpenDisk(f.dir, opts)
	if err != nil {
		f.t.Fatalf("OpenDisk: %v", err)
	}
	srv, err := server.New(server.Options{Store: d, DisableLimits: true, Logger: f.logs.Logger()})
	if err != nil {
		d.Close()
		f.t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { srv.Close() })
	f.srv, f.c = srv, servertest.Client(f.t, srv, servertest.NoRetries)
}

// restart closes the server and starts a new one on the same directory,
// with no faults.
func (f *faultServer) restart() {
	f.t.Helper()
	if f.fs != nil {
		f.fs.Clear()
	}
	if err := f.srv.Close(); err != nil {
		f.t.Logf("Close: %v", err) // a store failed by a fault reports it; the files decide
	}
	f.start()
}

// put puts n records into stream and records what was acknowledged. It
// returns the request's error, if any.
func (f *faultServer) put(stream string, n int) error {
	entries := make([]types.PutRecordsRequestEntry, n)
	for i := range entries {
		f.n++
		data := fmt.Appendf(nil, "%s-%d-", stream, f.n)
		data = append(data, strings.Repeat("x", f.pad)...)
		entries[i] = types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(fmt.Sprint("k", f.n))}
	}
	out, err := f.c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.acked[stream] == nil {
		f.acked[stream] = map[string]string{}
	}
	var failed error
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			failed = fmt.Errorf("record %d: %s: %s", i, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
			continue
		}
		seq := aws.ToString(r.SequenceNumber)
		if _, dup := f.acked[stream][seq]; dup {
			f.t.Fatalf("sequence number %s acknowledged twice", seq)
		}
		f.acked[stream][seq] = string(entries[i].Data)
	}
	return failed
}

func (f *faultServer) mustPut(stream string, n int) {
	f.t.Helper()
	if err := f.put(stream, n); err != nil {
		f.t.Fatalf("put to %s: %v", stream, err)
	}
}

// verify reads every shard of every stream in the ledger: each acknowledged
// record is there exactly once with its sequence number, no sequence number
// appears twice, every closed shard reads to its end (ChildShards), and every
// stream has an open shard.
func (f *faultServer) verify() {
	f.t.Helper()
	ctx := context.Background()
	for stream, acked := range f.acked {
		seen := map[string]string{}
		open := 0
		for _, sh := range servertest.Shards(f.t, f.c, stream) {
			closed := sh.SequenceNumberRange.EndingSequenceNumber != nil
			if !closed {
				open++
			}
			it, err := f.c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				f.t.Fatal(err)
			}
			iter, ended := it.ShardIterator, false
			for range 1000 {
				page, err := f.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					f.t.Fatalf("GetRecords %s/%s: %v", stream, aws.ToString(sh.ShardId), err)
				}
				for _, r := range page.Records {
					seq := aws.ToString(r.SequenceNumber)
					if _, dup := seen[seq]; dup {
						f.t.Fatalf("%s: sequence number %s read twice", stream, seq)
					}
					seen[seq] = string(r.Data)
				}
				if page.NextShardIterator == nil {
					ended = page.ChildShards != nil
					break
				}
				if len(page.Records) == 0 && !closed {
					break
				}
				iter = page.NextShardIterator
			}
			if closed && !ended {
				f.t.Fatalf("%s: closed shard %s never reaches its end (ending sequence number %s)", stream, aws.ToString(sh.ShardId), aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber))
			}
		}
		if open == 0 {
			f.t.Fatalf("%s: no open shard", stream)
		}
		for seq, data := range acked {
			if got, ok := seen[seq]; !ok || got != data {
				f.t.Fatalf("%s: acknowledged record %s (%q) read back as %q, present %v", stream, seq, data, got, ok)
			}
		}
	}
}

// describe summarises what a stream's metadata holds.
func (f *faultServer) describe(stream string) string {
	f.t.Helper()
	ctx := context.Background()
	d, err := f.c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)})
	if err != nil {
		f.t.Fatalf("DescribeStream %s: %v", stream, err)
	}
	tags, err := f.c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String(stream)})
	if err != nil {
		f.t.Fatal(err)
	}
	sd := d.StreamDescription
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s retention=%d enc=%s tags=%d", sd.StreamStatus, aws.ToInt32(sd.RetentionPeriodHours), sd.EncryptionType, len(tags.Tags))
	for _, sh := range servertest.Shards(f.t, f.c, stream) {
		fmt.Fprintf(&sb, " %s[%s..%s]", aws.ToString(sh.ShardId), aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber), aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber))
	}
	return sb.String()
}

// retryable checks err is an AWS error a client retries, with no local path.
func retryable(t *testing.T, what string, err error, codes ...string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: %v; want an AWS error", what, err)
	}
	ok := false
	for _, c := range codes {
		ok = ok || ae.ErrorCode() == c
	}
	if !ok || !kds.IsRetryable(&kds.Error{Code: ae.ErrorCode()}) {
		t.Fatalf("%s: %s %q; want one of %v (retryable)", what, ae.ErrorCode(), ae.ErrorMessage(), codes)
	}
	if strings.Contains(ae.ErrorMessage(), "/") {
		t.Fatalf("%s: message %q names a local path", what, ae.ErrorMessage())
	}
}

// shardDirs counts the shard directories of every stream.
func shardDirs(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "streams", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func streamDirs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "streams"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// metaWriteFaults are the ways a metadata write fails: no space for the
// temporary file, an fsync error, a rename error.
var metaWriteFaults = []storetest.Rule{
	{Op: storetest.OpCreate, Path: "meta.tmp", Err: syscall.ENOSPC},
	{Op: storetest.OpSync, Path: "meta.tmp", Err: syscall.EIO},
	{Op: storetest.OpRename, Path: "meta.tmp", Err: syscall.EIO},
}

// A metadata write that fails (no space for the temporary file, an fsync or
// rename error) makes every metadata change answer a retryable error and
// change nothing, while puts to another stream go on; after a restart every
// acknowledged record is there once.
func TestFailedMetadataWriteChangesNothing(t *testing.T) {
	f := startFaultServer(t, t.TempDir())
	ctx := context.Background()
	servertest.CreateStream(t, f.c, "s", 2)
	servertest.CreateStream(t, f.c, "other", 1)
	f.mustPut("s", 20)
	f.mustPut("other", 5)
	s := aws.String("s")
	shards := servertest.Shards(t, f.c, "s")
	ops := []struct {
		name string
		do   func() error
	}{
		{"AddTagsToStream", func() error {
			_, err := f.c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: s, Tags: map[string]string{"a": "b"}})
			return err
		}},
		{"IncreaseStreamRetentionPeriod", func() error {
			_, err := f.c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: s, RetentionPeriodHours: aws.Int32(48)})
			return err
		}},
		{"StartStreamEncryption", func() error {
			_, err := f.c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: s, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("k")})
			return err
		}},
		{"SplitShard", func() error {
			_, err := f.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: s, ShardToSplit: shards[0].ShardId, NewStartingHashKey: aws.String("1000")})
			return err
		}},
		{"MergeShards", func() error {
			_, err := f.c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: s, ShardToMerge: shards[0].ShardId, AdjacentShardToMerge: shards[1].ShardId})
			return err
		}},
		{"UpdateShardCount", func() error {
			_, err := f.c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: s, TargetShardCount: aws.Int32(3), ScalingType: types.ScalingTypeUniformScaling})
			return err
		}},
		{"DeleteStream", func() error {
			_, err := f.c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: s})
			return err
		}},
		{"CreateStream", func() error {
			_, err := f.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("new"), ShardCount: aws.Int32(2)})
			return err
		}},
	}
	for _, fault := range metaWriteFaults {
		for _, op := range ops {
			before, dirs := f.describe("s"), streamDirs(t, f.dir)
			f.fs.Inject(fault)
			err := op.do()
			retryable(t, fmt.Sprintf("%s with %s failing with %v", op.name, fault.Op, fault.Err), err, kds.ErrCodeServiceUnavailable, kds.ErrCodeInternalFailure)
			f.mustPut("other", 3) // other streams keep working
			f.mustPut("s", 3)     // and so does this one
			f.fs.Clear()
			if after := f.describe("s"); after != before {
				t.Fatalf("%s failed but changed the stream:\n before %s\n after  %s", op.name, before, after)
			}
			if got := streamDirs(t, f.dir); got != dirs {
				t.Fatalf("%s failed but left %d stream directories, had %d", op.name, got, dirs)
			}
			if _, err := f.c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("new")}); err == nil {
				t.Fatalf("%s failed but stream new exists", op.name)
			}
		}
	}
	f.restart()
	f.verify()
	// The same changes go through once the disk is healthy, and survive.
	for _, op := range ops[:6] {
		if err := op.do(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		shards = servertest.Shards(t, f.c, "s")
		open := shards[:0]
		for _, sh := range shards {
			if sh.SequenceNumberRange.EndingSequenceNumber == nil {
				open = append(open, sh)
			}
		}
		// Merge the two lowest open shards next: adjacent.
		sort.Slice(open, func(i, j int) bool {
			a, _ := kds.ParseHashKey(aws.ToString(open[i].HashKeyRange.StartingHashKey))
			b, _ := kds.ParseHashKey(aws.ToString(open[j].HashKeyRange.StartingHashKey))
			return a.Cmp(b) < 0
		})
		shards = open
		f.mustPut("s", 10)
	}
	before := f.describe("s")
	f.restart()
	if after := f.describe("s"); after != before {
		t.Fatalf("restart changed the stream:\n before %s\n after  %s", before, after)
	}
	f.verify()
}

// A full disk fails puts with a retryable error without paths and marks
// /health degraded; reads go on, a split answers retryable and changes
// nothing; once space returns the store recovers by itself. After a
// restart every acknowledged record is there once, and the split parent's
// end is reachable.
func TestFullDiskRecoversWithoutRestart(t *testing.T) {
	f := startFaultServer(t, t.TempDir())
	ctx := context.Background()
	servertest.CreateStream(t, f.c, "s", 1)
	servertest.CreateStream(t, f.c, "other", 1)
	f.mustPut("s", 30)
	f.mustPut("other", 10)
	health := func() int {
		resp, err := http.Get(f.srv.URL() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if h := health(); h != http.StatusOK {
		t.Fatalf("/health = %d before the fault", h)
	}
	f.fs.Inject(storetest.Rule{Op: storetest.OpWrite, Path: ".seg", Err: syscall.ENOSPC})
	f.fs.Inject(storetest.Rule{Op: storetest.OpCreate, Err: syscall.ENOSPC})
	for range 3 {
		retryable(t, "PutRecords on a full disk", f.put("s", 5), kds.ErrCodeServiceUnavailable)
	}
	_, err := f.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("other"), Data: []byte("x"), PartitionKey: aws.String("k")})
	retryable(t, "PutRecord on a full disk", err, kds.ErrCodeServiceUnavailable)
	if h := health(); h != http.StatusServiceUnavailable {
		t.Fatalf("/health = %d on a full disk, want 503", h)
	}
	before := f.describe("s")
	_, err = f.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
	retryable(t, "SplitShard on a full disk", err, kds.ErrCodeServiceUnavailable)
	if after := f.describe("s"); after != before {
		t.Fatalf("failed split changed the stream:\n before %s\n after  %s", before, after)
	}
	if recs := servertest.ReadShard(t, f.c, "other", "shardId-000000000000"); len(recs) != 10 {
		t.Fatalf("read %d records of the other stream on a full disk, want 10", len(recs))
	}
	f.fs.Clear()
	for i := 0; health() != http.StatusOK; i++ {
		if i == 3000 {
			t.Fatal("/health still degraded 30 s after space returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.mustPut("s", 10)
	if _, err := f.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatalf("SplitShard after space returned: %v", err)
	}
	f.mustPut("s", 10)
	f.verify()
	f.restart()
	f.verify()
}

// Running out of file handles or space while CreateStream or a reshard
// creates shards (at the first or a later shard), or a panic there under the
// stream's lock, answers a retryable error and leaves no half change: no
// lock held, no directory, no closed parent without children, no stream
// without an open shard.
func TestShardCreationFaultsLeaveNoHalfChange(t *testing.T) {
	for _, fault := range []storetest.Rule{
		{Op: storetest.OpCreate, Path: ".seg", Err: syscall.EMFILE},
		{Op: storetest.OpCreate, Path: ".seg", Err: syscall.ENFILE},
		{Op: storetest.OpMkdir, Err: syscall.ENOSPC},
		{Op: storetest.OpCreate, Path: ".seg", Panic: true},
		{Op: storetest.OpCreate, Path: ".seg", Err: syscall.EMFILE, After: 2}, // midway through the reshard
	} {
		t.Run(fmt.Sprintf("%s-%v-panic=%v-after=%d", fault.Op, fault.Err, fault.Panic, fault.After), func(t *testing.T) {
			f := startFaultServer(t, t.TempDir())
			ctx := context.Background()
			servertest.CreateStream(t, f.c, "s", 2)
			servertest.CreateStream(t, f.c, "other", 1)
			f.mustPut("s", 20)
			before, dirs, streams := f.describe("s"), shardDirs(t, f.dir), streamDirs(t, f.dir)
			f.fs.Inject(fault)
			_, err := f.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("new"), ShardCount: aws.Int32(3)})
			retryable(t, "CreateStream", err, kds.ErrCodeServiceUnavailable, kds.ErrCodeInternalFailure)
			if got := streamDirs(t, f.dir); got != streams {
				t.Fatalf("failed CreateStream left %d stream directories, had %d", got, streams)
			}
			_, err = f.c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(3), ScalingType: types.ScalingTypeUniformScaling})
			retryable(t, "UpdateShardCount", err, kds.ErrCodeServiceUnavailable, kds.ErrCodeInternalFailure)
			_, err = f.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
			retryable(t, "SplitShard", err, kds.ErrCodeServiceUnavailable, kds.ErrCodeInternalFailure)
			if after := f.describe("s"); after != before {
				t.Fatalf("failed reshard changed the stream:\n before %s\n after  %s", before, after)
			}
			if got := shardDirs(t, f.dir); got != dirs {
				t.Fatalf("failed reshard left %d shard directories, had %d", got, dirs)
			}
			f.mustPut("s", 10) // the stream's lock was released
			f.mustPut("other", 10)
			if fault.Panic {
				if out := f.logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "panic serving request") || !strings.Contains(out, "goroutine") {
					t.Fatalf("panic not logged at ERROR with its stack:\n%s", out)
				}
			}
			f.fs.Clear()
			if _, err := f.c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(3), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
				t.Fatalf("UpdateShardCount after the fault: %v", err)
			}
			f.mustPut("s", 10)
			f.restart()
			f.verify()
		})
	}
}
