package store_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/server/store"
	"github.com/ksp-project/ksp/server/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

func TestDiskConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		opts store.DiskOptions
	}{
		{"defaults", store.DiskOptions{}},
		// Tiny segments, index and buffers: every path that crosses a
		// boundary gets exercised.
		{"always-small", store.DiskOptions{SegmentBytes: 2048, IndexInterval: 300, WriteBuffer: 700, ReadChunk: 100, MaxOpenFiles: 2}},
		{"interval-small", store.DiskOptions{Fsync: store.FsyncInterval, SegmentBytes: 4096, IndexInterval: 500, ReadChunk: 1000}},
		{"never-small", store.DiskOptions{Fsync: store.FsyncNever, SegmentBytes: 3000, IndexInterval: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return openDisk(t, t.TempDir(), c.opts) })
		})
	}
}

func openDisk(t *testing.T, dir string, opts store.DiskOptions) *store.Disk {
	t.Helper()
	d, err := store.OpenDisk(dir, opts)
	if err != nil {
		t.Fatalf("OpenDisk: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// logBuffer captures a store's log output.
type logBuffer = storetest.LogBuffer

var lid = store.LogID{Stream: "orders", Created: 1700000000000, ShardIdx: 0}

func rec(i int) store.Record { return storetest.Rec(i, 1000+int64(i)) }

func appendCommit(t *testing.T, d *store.Disk, l store.Log, start, n int) {
	t.Helper()
	recs := make([]store.Record, n)
	for i := range recs {
		recs[i] = rec(start + i)
	}
	first, err := l.Append(recs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if first != uint64(start) {
		t.Fatalf("Append at %d, want %d", first, start)
	}
	if err := d.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// checkLog checks the log holds exactly records [first, next) of rec.
func checkLog(t *testing.T, l store.Log, first, next uint64) {
	t.Helper()
	f, n, last := l.Bounds()
	if f != first || n != next {
		t.Fatalf("Bounds = %d %d, want %d %d", f, n, first, next)
	}
	if next > first && last != rec(int(next-1)).ArrivalMilli {
		t.Fatalf("Bounds last arrival = %d, want %d", last, rec(int(next-1)).ArrivalMilli)
	}
	pos := first
	for {
		recs, err := l.Read(pos, 1000, 4<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", pos, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			w := rec(int(pos))
			if r.Position != pos || r.ArrivalMilli != w.ArrivalMilli || r.PartitionKey != w.PartitionKey || !bytes.Equal(r.Data, w.Data) {
				t.Fatalf("record at %d: got pos %d key %q data %q", pos, r.Position, r.PartitionKey, r.Data)
			}
			pos++
		}
	}
	if pos != next {
		t.Fatalf("read up to %d, want %d", pos, next)
	}
}

func mustLog(t *testing.T, d store.Store, id store.LogID) store.Log {
	t.Helper()
	l, err := d.Log(id)
	if err != nil {
		t.Fatalf("Log: %v", err)
	}
	return l
}

func TestDiskReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := store.DiskOptions{SegmentBytes: 4096, IndexInterval: 256}
	d := openDisk(t, dir, opts)
	l := mustLog(t, d, lid)
	l2 := mustLog(t, d, store.LogID{Stream: "..", Created: 1, ShardIdx: 3})
	appendCommit(t, d, l, 0, 250)
	appendCommit(t, d, l2, 0, 7)
	if err := d.SaveMeta([]byte("meta-1")); err != nil {
		t.Fatal(err)
	}
	// Appended but never committed: a clean Close still keeps it.
	if _, err := l.Append([]store.Record{rec(250)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 3 {
		d = openDisk(t, dir, opts)
		l = mustLog(t, d, lid)
		next := uint64(251 + round*100)
		checkLog(t, l, 0, next)
		checkLog(t, mustLog(t, d, store.LogID{Stream: "..", Created: 1, ShardIdx: 3}), 0, 7)
		if doc, err := d.LoadMeta(); err != nil || string(doc) != "meta-1" {
			t.Fatalf("LoadMeta = %q, %v", doc, err)
		}
		appendCommit(t, d, l, int(next), 100)
		checkLog(t, l, 0, next+100)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	segs := segments(t, dir, lid)
	if len(segs) < 5 {
		t.Fatalf("only %d segments with SegmentBytes 4096", len(segs))
	}
}

// segments lists a log's segment files in order.
func segments(t *testing.T, dir string, id store.LogID) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(filepath.Join(dir, "streams"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".seg") && filepath.Base(filepath.Dir(p)) == fmt.Sprint(id.ShardIdx) &&
			strings.HasSuffix(filepath.Base(filepath.Dir(filepath.Dir(p))), fmt.Sprintf("-%d", id.Created)) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestDiskStreamNamesStayInside(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	d := openDisk(t, dir, store.DiskOptions{})
	names := []string{".", "..", "../x", "a/../../b", "/etc", strings.Repeat("z", 300), "Ab", "aB", ""}
	for i, n := range names {
		l := mustLog(t, d, store.LogID{Stream: n, Created: 5, ShardIdx: 0})
		appendCommit(t, d, l, 0, i+1)
	}
	for i, n := range names {
		checkLog(t, mustLog(t, d, store.LogID{Stream: n, Created: 5, ShardIdx: 0}), 0, uint64(i+1))
	}
	ents, err := os.ReadDir(parent)
	if err != nil || len(ents) != 1 || ents[0].Name() != "data" {
		t.Fatalf("parent of the data dir holds %v (%v); want only data", ents, err)
	}
	streams, _ := os.ReadDir(filepath.Join(dir, "streams"))
	if len(streams) != len(names) {
		t.Fatalf("%d stream dirs for %d names", len(streams), len(names))
	}
	for _, n := range names {
		if err := d.DropStream(n, 5); err != nil {
			t.Fatal(err)
		}
	}
	if streams, _ := os.ReadDir(filepath.Join(dir, "streams")); len(streams) != 0 {
		t.Fatalf("%d stream dirs left after dropping all", len(streams))
	}
}

func TestDiskDropStreamPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDisk(t, dir, store.DiskOptions{})
	appendCommit(t, d, mustLog(t, d, lid), 0, 10)
	other := store.LogID{Stream: lid.Stream, Created: lid.Created + 1}
	appendCommit(t, d, mustLog(t, d, other), 0, 3)
	if err := d.DropStream(lid.Stream, lid.Created); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = openDisk(t, dir, store.DiskOptions{})
	checkLog(t, mustLog(t, d, lid), 0, 0)
	checkLog(t, mustLog(t, d, other), 0, 3)
}

func TestDiskTrimSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := store.DiskOptions{SegmentBytes: 1024}
	d := openDisk(t, dir, opts)
	l := mustLog(t, d, lid)
	for i := 0; i < 400; i += 20 {
		appendCommit(t, d, l, i, 20)
	}
	before := len(segments(t, dir, lid))
	first, err := l.TrimBefore(rec(200).ArrivalMilli)
	if err != nil {
		t.Fatal(err)
	}
	if first == 0 || first > 200 {
		t.Fatalf("TrimBefore kept from %d; want in (0, 200]", first)
	}
	after := len(segments(t, dir, lid))
	if after >= before {
		t.Fatalf("%d segments before trimming, %d after", before, after)
	}
	checkLog(t, l, first, 400)
	// Reading from before the horizon starts at the horizon.
	if recs, err := l.Read(0, 1, 1<<20); err != nil || len(recs) != 1 || recs[0].Position != first {
		t.Fatalf("Read(0) after trim = %v, %v; want position %d", recs, err, first)
	}
	d.Close()

	d = openDisk(t, dir, opts)
	l = mustLog(t, d, lid)
	checkLog(t, l, first, 400)
	appendCommit(t, d, l, 400, 5)
	checkLog(t, l, first, 405)

	// Everything old, and all of it committed: even the active segment goes,
	// positions carry on.
	first, err = l.TrimBefore(1 << 40)
	if err != nil || first != 405 {
		t.Fatalf("TrimBefore(all) = %d, %v; want 405", first, err)
	}
	if f, n, last := l.Bounds(); f != 405 || n != 405 || last != 0 {
		t.Fatalf("Bounds after trimming all = %d %d %d", f, n, last)
	}
	if segs := segments(t, dir, lid); len(segs) != 1 {
		t.Fatalf("%d segments after trimming all: %v", len(segs), segs)
	}
	appendCommit(t, d, l, 405, 3)
	checkLog(t, l, 405, 408)
	d.Close()
	d = openDisk(t, dir, opts)
	checkLog(t, mustLog(t, d, lid), 405, 408)
}

func TestDiskLargeRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := store.DiskOptions{SegmentBytes: 16 << 20, ReadChunk: 64 << 10}
	d := openDisk(t, dir, opts)
	l := mustLog(t, d, lid)
	mk := func(i int) store.Record {
		data := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a}, (10<<20)/3)
		return store.Record{ArrivalMilli: int64(i), PartitionKey: fmt.Sprint(i), Data: data}
	}
	for i := range 3 {
		if _, err := l.Append([]store.Record{mk(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	check := func(l store.Log) {
		t.Helper()
		for i := range 3 {
			recs, err := l.Read(uint64(i), 10, 1)
			if err != nil || len(recs) != 1 {
				t.Fatalf("Read(%d) = %d records, %v", i, len(recs), err)
			}
			if w := mk(i); !bytes.Equal(recs[0].Data, w.Data) || recs[0].PartitionKey != w.PartitionKey {
				t.Fatalf("record %d differs", i)
			}
		}
	}
	check(l)
	d.Close()
	d = openDisk(t, dir, opts)
	check(mustLog(t, d, lid))
	big := store.Record{Data: make([]byte, store.MaxRecordData+1)}
	if _, err := mustLog(t, d, lid).Append([]store.Record{big}); err == nil {
		t.Fatal("Append of an oversized record succeeded")
	}
}

func TestDiskBoundedOpenFiles(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, store.DiskOptions{SegmentBytes: 512, MaxOpenFiles: 3})
	var logs []store.Log
	for k := range 4 {
		l := mustLog(t, d, store.LogID{Stream: "s", Created: 1, ShardIdx: k})
		appendCommit(t, d, l, 0, 200)
		logs = append(logs, l)
	}
	if n := len(segments(t, dir, store.LogID{Stream: "s", Created: 1, ShardIdx: 0})); n < 20 {
		t.Fatalf("only %d segments", n)
	}
	fdsBefore := openFDs(t)
	for range 2 {
		for _, l := range logs {
			checkLog(t, l, 0, 200)
		}
	}
	if fdsAfter := openFDs(t); fdsAfter > fdsBefore+3 {
		t.Fatalf("open files went from %d to %d reading with MaxOpenFiles 3", fdsBefore, fdsAfter)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// Many goroutines committing at once share fsyncs, and each sees its own
// records visible when its Commit returns.
func TestDiskGroupCommit(t *testing.T) {
	t.Parallel()
	// Each fsync parks its goroutine a millisecond, so the other committers
	// run meanwhile even on a busy machine whose disk syncs in microseconds
	// (where, scheduled one after another, they shared nothing).
	d := openDisk(t, t.TempDir(), store.DiskOptions{FS: &storetest.FaultFS{SyncDelay: time.Millisecond}})
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		l := mustLog(t, d, store.LogID{Stream: "g", Created: 1, ShardIdx: w % 3})
		wg.Go(func() {
			for range rounds {
				recs := []store.Record{rec(w)}
				first, err := l.Append(recs)
				if err == nil {
					err = d.Commit()
				}
				if err == nil {
					if _, next, _ := l.Bounds(); next <= first {
						err = fmt.Errorf("Commit returned but position %d is not visible (next %d)", first, next)
					}
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Group commit: concurrent committers share fsync rounds.
	if n := store.SyncRounds(d); n >= workers*rounds {
		t.Fatalf("%d commits took %d fsync rounds; want fewer (shared)", workers*rounds, n)
	} else {
		t.Logf("%d commits, %d fsync rounds", workers*rounds, n)
	}
}

// A round that wrote while the round before it was syncing takes, once that
// sync is done, the commits that queued meanwhile too (group commit sized by
// the queue, not by what had arrived when it began), and syncs the log once
// though it wrote it twice.
func TestDiskRoundTakesCommitsQueuedWhileEarlierSyncs(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	var datasyncs atomic.Int64
	held, release := make(chan struct{}), make(chan struct{})
	ffs := &storetest.FaultFS{BeforeSync: func(string) {
		datasyncs.Add(1)
		if armed.CompareAndSwap(true, false) {
			close(held)
			<-release // the first round's sync, until the others queued
		}
	}}
	d := openDisk(t, t.TempDir(), store.DiskOptions{FS: ffs, Fsync: store.FsyncAlways})
	l := mustLog(t, d, lid)
	datasyncs.Store(0)
	armed.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	commitOne := func(i int) {
		if _, err := l.Append([]store.Record{rec(i)}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := d.Commit(); err != nil {
				errs <- err
			}
		})
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for range 10000 {
			if ok() {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("gave up waiting for %s", what)
	}
	commitOne(0) // round 1, held in its sync
	<-held
	commitOne(1) // round 2 writes while round 1 syncs
	waitFor("round 2 to write", func() bool { started, flushing := store.CommitsStarted(d); return started == 2 && !flushing })
	commitOne(2) // queue behind round 2
	commitOne(3)
	waitFor("4 commits to queue", func() bool { return store.CommitsRequested(d) == 4 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkLog(t, l, 0, 4)
	if r, f := store.SyncRounds(d), store.FileSyncs(d); r != 2 || f != 2 {
		t.Fatalf("4 commits took %d fsync rounds syncing %d logs; want 2 and 2 (the second round takes the 3 queued behind the first)", r, f)
	}
	if n := datasyncs.Load(); n != 2 {
		t.Fatalf("%d fdatasyncs of the one segment in 2 rounds, want 2", n)
	}
}

func TestDiskLocked(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the directory lock is flock(2)")
	}
	dir := t.TempDir()
	d := openDisk(t, dir, store.DiskOptions{})
	if d2, err := store.OpenDisk(dir, store.DiskOptions{}); err == nil {
		d2.Close()
		t.Fatal("a second OpenDisk of an open store succeeded")
	}
	d.Close()
	openDisk(t, dir, store.DiskOptions{}).Close()
}
