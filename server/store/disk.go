package store

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FsyncPolicy says when the disk store forces appended records to stable
// storage.
type FsyncPolicy int

const (
	// FsyncAlways: Commit returns only after every record appended before it
	// is fsynced (data, file size and new directory entries), and only then
	// publishes them to readers. Concurrent Commit callers share fsyncs: one
	// caller syncs every dirty log while the others queue for the next
	// round, which may start before this one's sync ends but publishes only
	// after it. An acknowledged record survives a process crash and a power
	// loss.
	FsyncAlways FsyncPolicy = iota
	// FsyncInterval: Commit writes the appended records to the files (the OS
	// page cache) and publishes them without waiting; a background goroutine
	// fsyncs every DiskOptions.FsyncInterval. A committed record survives a
	// process crash (kill -9); a power loss may lose the last interval.
	FsyncInterval
	// FsyncNever: Commit writes and publishes; the store never fsyncs
	// segments (the OS writes them back when it likes). Survives a process
	// crash, not a power loss. Meant for benchmarks and throwaway data.
	FsyncNever
)

func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncPolicy(%d)", int(p))
}

// ParseFsyncPolicy parses "always", "interval" or "never" (also "none").
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch strings.ToLower(s) {
	case "always":
		return FsyncAlways, nil
	case "interval":
		return FsyncInterval, nil
	case "never", "none":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("store: unknown fsync policy %q (want always, interval or never)", s)
}

// DiskOptions configures OpenDisk. The zero value is valid.
type DiskOptions struct {
	// Fsync is the durability policy. Default FsyncAlways.
	Fsync FsyncPolicy
	// FsyncInterval is the background sync period under FsyncInterval.
	// Default 50ms.
	FsyncInterval time.Duration
	// SegmentBytes is the size at which a log starts a new segment file. A
	// record larger than this gets a segment of its own. Trimming removes
	// whole segments, so this is also the trim granularity. Default 64 MiB.
	SegmentBytes int64
	// IndexInterval is the distance in bytes between sparse index entries:
	// a Read or SeekTime scans at most this much to reach its record, and
	// the index costs 24 bytes of memory per interval of log. Default 64 KiB.
	IndexInterval int64
	// WriteBuffer is how many bytes of appended frames a log buffers before
	// writing them to its file ahead of a Commit. Default 1 MiB.
	WriteBuffer int
	// ReadChunk is the size of the ReadAt calls that Read and recovery make.
	// Default 256 KiB.
	ReadChunk int
	// MaxOpenFiles bounds the segment files the store keeps open across all
	// logs: half for idle read handles, half for the write handles of active
	// segments (least recently used closed first, reopened on demand), so
	// streams with any number of shards ever created stay under the process's
	// open-file limit. Default 512.
	MaxOpenFiles int
	// Recover says what to do with corruption found when a log is opened:
	// RecoverRefuse (default) or RecoverTruncate. A torn tail is cut either way.
	Recover RecoverMode
	// RetryInterval is how often a store that could not write (a full disk)
	// retries on its own. Default 1s.
	RetryInterval time.Duration
	// FS is the file system (default: the operating system's). Tests inject
	// failures through it.
	FS FS
	// Logger receives recovery reports and I/O failures. Nil discards.
	Logger *slog.Logger
}

func (o *DiskOptions) fill() error {
	if o.Fsync < FsyncAlways || o.Fsync > FsyncNever {
		return fmt.Errorf("store: invalid fsync policy %d", o.Fsync)
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = 50 * time.Millisecond
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 64 << 20
	}
	if o.IndexInterval <= 0 {
		o.IndexInterval = 64 << 10
	}
	if o.WriteBuffer <= 0 {
		o.WriteBuffer = 1 << 20
	}
	if o.ReadChunk <= 0 {
		o.ReadChunk = 256 << 10
	}
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = 512
	}
	if o.Recover < RecoverRefuse || o.Recover > RecoverTruncate {
		return fmt.Errorf("store: invalid recover mode %d", o.Recover)
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.FS == nil {
		o.FS = OS{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Disk is the durable Store: one directory per stream, one per shard, and in
// it append-only segment files of CRC-checked frames (see frame.go).
//
// Recovery happens when a log is first opened with Log: every segment is
// scanned and checked (see recover.go). A torn tail (a bad last frame with
// nothing valid after it: a write the crash interrupted, never acknowledged
// under FsyncAlways) is cut. Corruption (a bad frame followed by valid ones,
// damage in a sealed segment, a missing segment) is never cut silently: by
// default the log refuses to open with a *CorruptionError naming the stream,
// shard and positions; with RecoverTruncate the damaged segment is copied
// aside first and the log continues past every position it may have held, so
// no position is ever issued twice.
//
// A write that fails for want of space (ENOSPC, EDQUOT) or file handles
// (EMFILE, ENFILE) fails only the commits that needed it: the bytes stay
// buffered, Health reports the condition, and the store retries by itself
// every RetryInterval until the write goes through. After an fsync error or
// any other write error the store fails: Append and Commit return that error
// until it is closed and reopened, because after a failed fsync the kernel
// may have dropped the dirty pages and the file no longer says what was
// acknowledged. Reopening recovers from what is on disk.
type Disk struct {
	dir     string
	opts    DiskOptions
	fs      FS
	log     *slog.Logger
	fds     fdCache
	writers writerLRU

	closed   atomic.Bool
	failed   atomic.Pointer[error]
	degraded atomic.Pointer[error] // a transient write failure not yet retried successfully

	mu   sync.Mutex // guards: logs
	logs map[LogID]*diskLog

	dirtyMu sync.Mutex // guards: dirty
	dirty   []*diskLog // logs appended to since their last commit flush

	// Group commit. A round flushes (one round at a time) while the round
	// before it syncs, flushes again what queued meanwhile once that sync
	// is done (it closes: no round begins before), then syncs;
	// rounds sync and publish in order (maxRoundsInFlight).
	cmu          sync.Mutex // guards: requested, started, covered, flushing, inflight, rounds, closedRounds, synced, finished
	ccond        sync.Cond
	requested    uint64 // Commit calls so far
	started      uint64 // Commit calls whose appends a round that began covers
	covered      uint64 // Commit calls whose appends a finished round covered
	flushing     bool   // a round is flushing (or Close holds the store)
	inflight     int    // rounds begun and not finished
	rounds       uint64 // rounds begun
	closedRounds uint64 // rounds that take no more Commit calls (they close in order)
	synced       uint64 // rounds whose fsyncs are done (they sync in order)
	finished     uint64 // rounds finished (they finish in order)

	metaMu sync.Mutex // guards: the meta files

	lock *os.File // LOCK, held while open

	stop chan struct{}
	wg   sync.WaitGroup

	syncs     atomic.Int64 // fsync rounds of the commit path (tests look)
	fileSyncs atomic.Int64 // sync jobs (one log's files) of those rounds
	syncNanos atomic.Int64 // time those rounds spent syncing
	trashSeq  atomic.Int64
}

var _ Store = (*Disk)(nil)

// OpenDisk opens (creating when missing) the store in dir. It writes nothing
// when the store exists and has nothing to finish, so a store on a full disk
// opens (and serves reads).
func OpenDisk(dir string, opts DiskOptions) (*Disk, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	if err := opts.FS.MkdirAll(filepath.Join(dir, streamsDir), 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d := &Disk{
		dir:  dir,
		opts: opts,
		fs:   opts.FS,
		log:  opts.Logger,
		logs: make(map[LogID]*diskLog),
		stop: make(chan struct{}),
	}
	lock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d.lock = lock
	d.fds.fs = opts.FS
	d.fds.max = max(1, opts.MaxOpenFiles/2)
	d.writers.max = max(1, opts.MaxOpenFiles-d.fds.max)
	d.ccond.L = &d.cmu
	// Finish interrupted DropStreams and SaveMetas.
	if err := d.cleanup(); err != nil {
		lock.Close()
		return nil, err
	}
	if opts.Fsync == FsyncInterval {
		d.every(opts.FsyncInterval, d.syncTick)
	}
	d.every(opts.RetryInterval, d.retry)
	return d, nil
}

// cleanup finishes interrupted DropStreams and SaveMetas.
func (d *Disk) cleanup() error {
	ents, err := d.fs.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	changed := false
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), trashPfx) || e.Name() == metaFile+".tmp" {
			if err := d.fs.RemoveAll(filepath.Join(d.dir, e.Name())); err != nil {
				return fmt.Errorf("store: removing %s: %w", e.Name(), err)
			}
			changed = true
		}
	}
	if changed {
		if err := d.fs.SyncDir(d.dir); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// check returns why the store cannot take writes, or nil.
func (d *Disk) check() error {
	if d.closed.Load() {
		return ErrClosed
	}
	if p := d.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail makes the store refuse writes from now on.
func (d *Disk) fail(err error) error {
	err = fmt.Errorf("store: failed, reopen to recover: %w", err)
	if d.failed.CompareAndSwap(nil, &err) {
		d.log.Error("store failed", "err", err)
		return err
	}
	return *d.failed.Load()
}

// Health returns why the store cannot take writes now (a failure that needs a
// reopen, or a full disk it is retrying), or nil when it can.
func (d *Disk) Health() error {
	if err := d.check(); err != nil {
		return err
	}
	if p := d.degraded.Load(); p != nil {
		return *p
	}
	return nil
}

// Log opens the log of one shard, creating it when missing and recovering it
// from disk the first time.
func (d *Disk) Log(id LogID) (Log, error) { return d.openOnce(id, true) }

// OpenLog opens the log of one shard that must exist: a missing shard
// directory is ErrMissing (the server refuses to start rather than bring a
// shard back empty with its positions restarting).
func (d *Disk) OpenLog(id LogID) (Log, error) { return d.openOnce(id, false) }

// ErrMissing is returned by OpenLog for a log that has no directory, and by
// LoadMeta when stream directories exist without a metadata document.
var ErrMissing = errors.New("store: missing")

func (d *Disk) openOnce(id LogID, create bool) (Log, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if id.ShardIdx < 0 {
		return nil, fmt.Errorf("store: negative shard index %d", id.ShardIdx)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if l, ok := d.logs[id]; ok {
		return l, nil
	}
	l, err := d.openLog(id, create)
	if err != nil {
		return nil, err
	}
	d.logs[id] = l
	return l, nil
}

// DropLog deletes one shard log (a shard whose creation was rolled back).
func (d *Disk) DropLog(id LogID) error {
	if d.closed.Load() {
		return ErrClosed
	}
	d.mu.Lock()
	if l, ok := d.logs[id]; ok {
		l.shut(false)
		delete(d.logs, id)
	}
	d.mu.Unlock()
	dir := d.logPath(id)
	if err := d.fs.RemoveAll(dir); err != nil {
		return fmt.Errorf("store: dropping shard %d of %q: %w", id.ShardIdx, id.Stream, err)
	}
	if d.opts.Fsync != FsyncNever {
		if err := d.fs.SyncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("store: dropping shard %d of %q: %w", id.ShardIdx, id.Stream, err)
		}
	}
	return nil
}

// DropStream deletes every log of one stream incarnation, opened or not. The
// directory is first renamed into a trash name (one atomic step), so a crash
// midway never leaves half a stream behind: OpenDisk finishes the removal.
func (d *Disk) DropStream(stream string, created int64) error {
	if d.closed.Load() {
		return ErrClosed
	}
	trash, err := d.detachStream(stream, created)
	if err != nil || trash == "" {
		return err
	}
	if d.opts.Fsync != FsyncNever {
		if err := d.fs.SyncDir(d.dir); err != nil {
			return fmt.Errorf("store: dropping stream %q: %w", stream, err)
		}
		if err := d.fs.SyncDir(filepath.Join(d.dir, streamsDir)); err != nil {
			return fmt.Errorf("store: dropping stream %q: %w", stream, err)
		}
	}
	if err := d.fs.RemoveAll(trash); err != nil {
		return fmt.Errorf("store: dropping stream %q: %w", stream, err)
	}
	return nil
}

// detachStream shuts the stream's open logs and renames its directory into
// the trash, returning the trash path ("" when the stream has no directory).
func (d *Disk) detachStream(stream string, created int64) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return "", ErrClosed
	}
	for id, l := range d.logs {
		if id.Stream == stream && id.Created == created {
			l.shut(false)
			delete(d.logs, id)
		}
	}
	src := d.streamPath(stream, created)
	if _, err := d.fs.Stat(src); os.IsNotExist(err) {
		return "", nil
	}
	trash := filepath.Join(d.dir, fmt.Sprintf("%s%d-%d", trashPfx, time.Now().UnixNano(), d.trashSeq.Add(1)))
	if err := d.fs.Rename(src, trash); err != nil {
		return "", fmt.Errorf("store: dropping stream %q: %w", stream, err)
	}
	return trash, nil
}

// markDirty queues l for the next commit.
func (d *Disk) markDirty(l *diskLog) {
	if l.dirty.CompareAndSwap(false, true) {
		d.dirtyMu.Lock()
		d.dirty = append(d.dirty, l)
		d.dirtyMu.Unlock()
	}
}

// Commit makes everything appended before it durable per the fsync policy
// and visible to Read. Concurrent callers share the work: the first becomes
// the leader of a round that commits every dirty log; callers arriving
// meanwhile wait for the next round, which one of them leads for all. A
// round writes (flushes) early, while the round before it is still
// syncing, and once that sync is done writes what was appended meanwhile
// too and syncs it all: the round takes everything queued when the sync
// device frees up (group commit sized by the queue, never a round of a few
// stragglers behind a large one), and its writes overlap the earlier sync.
// Rounds never sync together: two fdatasyncs of one file at once may report
// a write-back error to only one of them (and the later round may close a
// segment the earlier one is syncing), so a round whose sync succeeded
// could publish data the kernel dropped. Rounds sync and publish in order,
// and a failed sync fails the store before the next round syncs.
//
// While a write fails for want of space or file handles, Commit returns that
// error even when the caller's own logs went through (a caller that needs to
// know looks at its log's Bounds: what is visible is committed).
func (d *Disk) Commit() error {
	if err := d.check(); err != nil {
		return err
	}
	d.cmu.Lock()
	d.requested++
	me := d.requested
	for d.covered < me {
		if d.started >= me || d.flushing || d.inflight >= maxRoundsInFlight || d.closedRounds != d.rounds {
			d.ccond.Wait()
			continue
		}
		if d.closed.Load() {
			d.cmu.Unlock()
			return ErrClosed
		}
		round := d.rounds
		d.rounds++
		d.inflight++
		r := &commitRound{}
		target := d.flushLocked(r)
		for d.synced != round {
			d.ccond.Wait()
		}
		// The round before has synced. Take the commits that queued
		// meanwhile too (no later round begins before this one closes).
		if d.requested > target && r.failed == nil {
			target = d.flushLocked(r)
		}
		d.closedRounds++
		d.ccond.Broadcast()
		d.cmu.Unlock()
		r.sync() // records a failure in the store before the next round syncs
		d.cmu.Lock()
		d.synced++
		d.ccond.Broadcast()
		for d.finished != round {
			d.ccond.Wait()
		}
		d.cmu.Unlock()
		err := d.finishRound(r)
		d.cmu.Lock()
		d.finished++
		d.inflight--
		d.covered = target
		d.ccond.Broadcast()
		if err != nil {
			d.cmu.Unlock()
			return err
		}
	}
	d.cmu.Unlock()
	// A round that covered this call may have failed while it waited.
	return d.Health()
}

// flushLocked flushes, for round r, every Commit counted so far (each made
// its appends before counting itself) and returns how many that is. The
// caller holds cmu and no round is flushing; cmu is released meanwhile.
func (d *Disk) flushLocked(r *commitRound) uint64 {
	target := d.requested
	d.started, d.flushing = target, true
	d.cmu.Unlock()
	d.flushRound(r)
	d.cmu.Lock()
	d.flushing = false
	d.ccond.Broadcast() // the next round may flush while this one syncs
	return target
}

// maxRoundsInFlight is how many commit rounds may be under way at once: a
// round syncing and the next one writing, then waiting to sync. Callers
// arriving meanwhile queue, and the waiting round takes them all when the
// sync before it ends.
const maxRoundsInFlight = 2

// commitRound is one round of a commit: what flushRound wrote, to sync and
// publish, one entry per log.
type commitRound struct {
	logs      []roundLog
	transient error // a write failed for want of space; its log stays dirty
	failed    error // the store failed (flushing or syncing)
}

// roundLog is what a round publishes in one log once it has run the log's
// sync job.
type roundLog struct {
	l   *diskLog
	t   pubTarget
	job syncJob
}

// flushRound writes every dirty log's pending frames and takes, under
// FsyncAlways, what each must fsync, adding both to r (a log flushed twice
// in one round has one entry: one sync job, never two syncing one file at
// once). A log whose write fails for want of space stays dirty for the
// next round; the others are committed.
func (d *Disk) flushRound(r *commitRound) {
	d.dirtyMu.Lock()
	logs := d.dirty
	d.dirty = nil
	d.dirtyMu.Unlock()
	var seen map[*diskLog]int // the logs r has, when flushing again
	if len(r.logs) > 0 {
		seen = make(map[*diskLog]int, len(r.logs))
		for i, e := range r.logs {
			seen[e.l] = i
		}
	}
	for _, l := range logs {
		l.dirty.Store(false)
		t, job, err := l.flushForCommit(d.opts.Fsync == FsyncAlways)
		if err != nil {
			if !isTransient(err) {
				r.failed = d.fail(err)
				return
			}
			d.markDirty(l)
			if r.transient == nil {
				r.transient = fmt.Errorf("store: %w", err)
			}
		}
		if !t.ok && job.empty() {
			continue
		}
		if i, ok := seen[l]; ok {
			e := &r.logs[i]
			if t.ok {
				e.t = t
			}
			e.job = e.job.then(job)
			continue
		}
		r.logs = append(r.logs, roundLog{l: l, t: t, job: job})
	}
}

// sync runs the round's fsyncs.
func (r *commitRound) sync() {
	if r.failed != nil {
		for _, e := range r.logs {
			e.job.release() // never run: the store failed
		}
		return
	}
	var jobs []syncJob
	for _, e := range r.logs {
		if !e.job.empty() {
			jobs = append(jobs, e.job)
		}
	}
	if len(jobs) == 0 {
		return
	}
	d := jobs[0].d
	d.syncs.Add(1)
	d.fileSyncs.Add(int64(len(jobs)))
	start := time.Now()
	err := runSyncJobs(jobs)
	d.syncNanos.Add(int64(time.Since(start)))
	if err != nil {
		r.failed = d.fail(err)
	}
}

// finishRound publishes a round once every earlier round has finished
// (the caller waits for that), unless the store failed meanwhile: an
// earlier round's failed fsync may have lost data this round's publication
// would show.
func (d *Disk) finishRound(r *commitRound) error {
	if r.failed != nil {
		return r.failed
	}
	if p := d.failed.Load(); p != nil {
		return *p
	}
	for _, e := range r.logs {
		e.l.publish(e.t)
	}
	if r.transient != nil {
		if d.degraded.Swap(&r.transient) == nil {
			d.log.Error("store cannot write; retrying", "err", r.transient)
		}
		return r.transient
	}
	if d.degraded.Swap(nil) != nil {
		d.log.Info("store writes again")
	}
	return nil
}

// every runs fn every interval until the store closes (a tracked goroutine).
func (d *Disk) every(interval time.Duration, fn func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
			}
			fn()
		}
	}()
}

// retry commits on its own while a write is failing for want of space, so
// the store recovers once space returns even if no writer calls again.
func (d *Disk) retry() {
	if d.degraded.Load() != nil && d.check() == nil {
		d.Commit() // its outcome is what Health reports
	}
}

// runSyncJobs runs the jobs, several at once: fsyncs of different files
// overlap in the device queue and the file system journal.
func runSyncJobs(jobs []syncJob) error {
	if len(jobs) == 1 {
		return jobs[0].run()
	}
	workers := min(len(jobs), 8)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		ferr error
	)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(jobs) {
					return
				}
				if err := jobs[i].run(); err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return ferr
}

// syncTick fsyncs every log's written data (FsyncInterval's background sync).
func (d *Disk) syncTick() {
	if err := d.syncAll(); err != nil {
		d.fail(err)
	}
}

// syncAll fsyncs whatever every open log has written and not yet synced.
func (d *Disk) syncAll() error {
	d.mu.Lock()
	logs := make([]*diskLog, 0, len(d.logs))
	for _, l := range d.logs {
		logs = append(logs, l)
	}
	d.mu.Unlock()
	var jobs []syncJob
	for _, l := range logs {
		if job := l.takeSync(); !job.empty() {
			jobs = append(jobs, job)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	return runSyncJobs(jobs)
}

// SaveMeta atomically replaces the metadata document: it writes a temporary
// file (a checksum line, then the document), fsyncs it, renames it over the
// old one and fsyncs the directory (all policies: the document is small and
// rarely written). On failure the old document stays in place.
func (d *Disk) SaveMeta(doc []byte) error {
	if d.closed.Load() {
		return ErrClosed
	}
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	tmp := filepath.Join(d.dir, metaFile+".tmp")
	f, err := d.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("store: saving meta: %w", err)
	}
	_, err = f.Write(sealMeta(doc))
	if err == nil {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, filepath.Join(d.dir, metaFile))
	}
	if err == nil {
		err = d.fs.SyncDir(d.dir)
	}
	if err != nil {
		if rerr := d.fs.Remove(tmp); rerr != nil && !os.IsNotExist(rerr) {
			d.log.Warn("store: removing temporary metadata", "err", rerr)
		}
		return fmt.Errorf("store: saving meta: %w", err)
	}
	return nil
}

// LoadMeta returns the last saved metadata document, or nil when none. A
// document whose checksum does not match is an error, and so is a missing
// document next to stream directories (ErrMissing): starting empty over
// existing data would hide it.
func (d *Disk) LoadMeta() ([]byte, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	path := filepath.Join(d.dir, metaFile)
	b, err := d.readFile(path)
	if errors.Is(err, os.ErrNotExist) {
		ents, err := d.fs.ReadDir(filepath.Join(d.dir, streamsDir))
		if err != nil {
			return nil, fmt.Errorf("store: loading meta: %w", err)
		}
		if len(ents) > 0 {
			return nil, fmt.Errorf("%w: %s is missing but %d stream directories exist in %s; restore the metadata file or move the directories away",
				ErrMissing, path, len(ents), filepath.Join(d.dir, streamsDir))
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: loading meta: %w", err)
	}
	doc, err := openMeta(b)
	if err != nil {
		return nil, fmt.Errorf("store: loading meta %s: %w", path, err)
	}
	return doc, nil
}

func (d *Disk) readFile(path string) ([]byte, error) {
	f, err := d.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// The metadata file is a checksum line, "ksp-meta crc32c=<8 hex digits>\n",
// followed by the document. Files without the line (written by earlier
// versions) are read as the bare document.
const metaMagic = "ksp-meta crc32c="

func sealMeta(doc []byte) []byte {
	out := make([]byte, 0, len(metaMagic)+9+len(doc))
	out = append(out, metaMagic...)
	out = fmt.Appendf(out, "%08x\n", crc32.Checksum(doc, castagnoli))
	return append(out, doc...)
}

func openMeta(b []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(metaMagic))
	if !ok {
		return b, nil
	}
	if len(rest) < 9 || rest[8] != '\n' {
		return nil, errors.New("malformed checksum line")
	}
	want, err := strconv.ParseUint(string(rest[:8]), 16, 32)
	if err != nil {
		return nil, errors.New("malformed checksum line")
	}
	doc := rest[9:]
	if got := crc32.Checksum(doc, castagnoli); got != uint32(want) {
		return nil, fmt.Errorf("checksum mismatch: file says %08x, document has %08x", want, got)
	}
	return doc, nil
}

// Close stops the background sync, writes and fsyncs what every log has
// buffered (committed or not: a clean shutdown keeps everything) and closes
// the files. It is idempotent; afterwards methods return ErrClosed.
func (d *Disk) Close() error {
	if !d.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(d.stop)
	d.wg.Wait()
	// Wait for the commit rounds in flight, and keep new ones out.
	d.cmu.Lock()
	for d.flushing || d.inflight > 0 {
		d.ccond.Wait()
	}
	d.flushing = true
	d.cmu.Unlock()

	d.mu.Lock()
	var err error
	for id, l := range d.logs {
		if e := l.shut(true); e != nil && err == nil {
			err = e
		}
		delete(d.logs, id)
	}
	d.mu.Unlock()
	d.fds.closeAll()
	d.lock.Close()

	d.cmu.Lock()
	d.flushing = false
	d.started, d.covered = d.requested, d.requested
	d.ccond.Broadcast()
	d.cmu.Unlock()
	return err
}
