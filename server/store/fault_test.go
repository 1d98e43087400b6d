package store_test

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ksp-project/ksp/server/store"
	"github.com/ksp-project/ksp/server/store/storetest"
)

// A write refused for want of space fails the commits that needed it and
// keeps the bytes; the store retries by itself and publishes them once space
// returns, without a reopen; nothing is lost or doubled across a reopen.
func TestDiskFullDiskRetriesBySelf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ffs := &storetest.FaultFS{}
	opts := store.DiskOptions{FS: ffs, RetryInterval: 5 * time.Millisecond, WriteBuffer: 64}
	d := openDisk(t, dir, opts)
	l := mustLog(t, d, lid)
	other := mustLog(t, d, store.LogID{Stream: "other", Created: 1, ShardIdx: 0})
	appendCommit(t, d, l, 0, 10)
	appendCommit(t, d, other, 0, 10)

	full := ffs.Inject(storetest.Rule{Op: storetest.OpWrite, Path: "/" + "0/", Err: syscall.ENOSPC})
	first, err := l.Append([]store.Record{rec(10), rec(11)})
	if err != nil || first != 10 {
		t.Fatalf("Append on a full disk = %d, %v; want 10 and the bytes kept", first, err)
	}
	if err := d.Commit(); !store.IsNoSpace(err) {
		t.Fatalf("Commit on a full disk = %v; want ENOSPC", err)
	}
	if _, next, _ := l.Bounds(); next != 10 {
		t.Fatalf("uncommitted records visible: next %d", next)
	}
	if err := d.Health(); !store.IsNoSpace(err) {
		t.Fatalf("Health on a full disk = %v", err)
	}
	// The log's buffer stays bounded: a further append is refused.
	if _, err := l.Append([]store.Record{rec(12)}); !store.IsNoSpace(err) {
		t.Fatalf("Append while the log cannot write = %v; want ENOSPC", err)
	}
	if full.Hits == 0 {
		t.Fatal("the fault never fired")
	}
	ffs.Clear()
	for i := 0; d.Health() != nil; i++ {
		if i == 6000 {
			t.Fatal("store still degraded 30 s after space returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkLog(t, l, 0, 12)
	appendCommit(t, d, l, 12, 3)
	d.Close()
	d = openDisk(t, dir, store.DiskOptions{})
	checkLog(t, mustLog(t, d, lid), 0, 15)
	checkLog(t, mustLog(t, d, store.LogID{Stream: "other", Created: 1, ShardIdx: 0}), 0, 10)
}

// An fsync error fails the store (the kernel may have dropped the pages):
// writes are refused until a reopen, which serves every acknowledged record.
func TestDiskSyncErrorFailsUntilReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ffs := &storetest.FaultFS{}
	d := openDisk(t, dir, store.DiskOptions{FS: ffs})
	l := mustLog(t, d, lid)
	appendCommit(t, d, l, 0, 20)
	ffs.Inject(storetest.Rule{Op: storetest.OpSync, Path: ".seg", Err: syscall.EIO})
	if _, err := l.Append([]store.Record{rec(20)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Commit with a failing fsync = %v; want EIO", err)
	}
	ffs.Clear()
	if _, err := l.Append([]store.Record{rec(21)}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after a failed fsync = %v; want the store failed", err)
	}
	if d.Health() == nil {
		t.Fatal("Health nil after a failed fsync")
	}
	d.Close()
	d = openDisk(t, dir, store.DiskOptions{})
	l = mustLog(t, d, lid)
	if _, next, _ := l.Bounds(); next < 20 {
		t.Fatalf("after reopen next = %d; acknowledged records lost", next)
	}
	checkLog(t, l, 0, 21) // the record whose fsync failed made it to the file
}

// Write handles are bounded too: appending to many logs keeps at most
// MaxOpenFiles handles open, reopening each log's segment on demand.
func TestDiskBoundedWriteHandles(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, store.DiskOptions{MaxOpenFiles: 4})
	fdsBefore := openFDs(t)
	var logs []store.Log
	for k := range 40 {
		l := mustLog(t, d, store.LogID{Stream: "w", Created: 1, ShardIdx: k})
		appendCommit(t, d, l, 0, 5)
		logs = append(logs, l)
	}
	for k, l := range logs {
		appendCommit(t, d, l, 5, 5)
		checkLog(t, l, 0, 10)
		if fds := openFDs(t); fds > fdsBefore+4+2 {
			t.Fatalf("after %d logs %d files open, %d before; want at most 4 more", k+1, fds, fdsBefore)
		}
	}
}

// Commit rounds never fsync one file twice at once: two fdatasyncs of a file
// under way together may report a write-back error to only one of them,
// and a later round may close (after syncing) a segment an earlier round is
// still syncing, so the earlier round would publish on a success it did not
// see. Many concurrent commits into one log with small segments (rolls
// between rounds) and slow syncs widen every window in which that could
// happen.
func TestDiskRoundsNeverSyncOneFileTogether(t *testing.T) {
	t.Parallel()
	ffs := &storetest.FaultFS{SyncDelay: 2 * time.Millisecond}
	d := openDisk(t, t.TempDir(), store.DiskOptions{FS: ffs, Fsync: store.FsyncAlways, SegmentBytes: 4 << 10})
	l := mustLog(t, d, lid)
	const writers, commits = 4, 25
	appendAndCommit(t, d, []store.Log{l, l, l, l}, commits, func(i int) []store.Record { return []store.Record{rec(i), rec(i + 1)} })
	if _, next, _ := l.Bounds(); next != writers*commits*2 {
		t.Fatalf("next = %d after every commit returned, want %d", next, writers*commits*2)
	}
	if n := ffs.MaxSameFileSyncs(); n != 1 {
		t.Fatalf("up to %d fdatasyncs of one file were under way at once, want 1", n)
	}
	if store.SyncRounds(d) < 2 {
		t.Fatalf("%d fsync rounds: the test did not commit in several rounds", store.SyncRounds(d))
	}
}

// TestDiskWriterLRUNeverSyncsAHandleARoundSyncs: with one write handle for
// many logs, the writer LRU closes a log's handle whenever another log is
// written, syncing it first; while a commit round's sync job holds that
// handle, the LRU must leave it to the job. Two fdatasyncs of one file at
// once may report a write-back error to only one of them, and a round that
// missed it would publish records the kernel dropped.
func TestDiskWriterLRUNeverSyncsAHandleARoundSyncs(t *testing.T) {
	t.Parallel()
	ffs := &storetest.FaultFS{SyncDelay: 2 * time.Millisecond}
	d := openDisk(t, t.TempDir(), store.DiskOptions{FS: ffs, Fsync: store.FsyncAlways, MaxOpenFiles: 2})
	var logs []store.Log
	for i := range 4 {
		logs = append(logs, mustLog(t, d, store.LogID{Stream: "lru", Created: 1700000000000, ShardIdx: i}))
	}
	appendAndCommit(t, d, logs, 25, func(i int) []store.Record { return []store.Record{rec(i)} })
	if n := ffs.MaxSameFileSyncs(); n != 1 {
		t.Fatalf("up to %d fdatasyncs of one file were under way at once, want 1", n)
	}
}

// appendAndCommit runs one writer per entry of logs (a log may repeat),
// each appending recs(i) and committing, commits times.
func appendAndCommit(t *testing.T, d store.Store, logs []store.Log, commits int, recs func(i int) []store.Record) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(logs))
	for _, l := range logs {
		wg.Go(func() {
			for i := range commits {
				if _, err := l.Append(recs(i)); err != nil {
					errs <- err
					return
				}
				if err := d.Commit(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
