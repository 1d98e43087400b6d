package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// caller syncs every dirty log while the others wait for that sync. An
	// acknowledged record survives a process crash and a power loss.
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
	// MaxOpenFiles bounds the idle read handles kept open across all logs
	// (each log also keeps its active segment open for writing). Default 256.
	MaxOpenFiles int
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
		o.MaxOpenFiles = 256
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
// scanned and checked. A torn or corrupt tail is truncated at the last good
// frame. Corruption earlier in the log stops the log at the last good record:
// the damaged segment is truncated there and every later segment is renamed
// aside (<name>.orphan-<unix ns>, never read again, kept for inspection).
// Both are reported on the logger with the file, offset and bytes cut. Since
// Commit syncs in position order, a record after a torn frame was never
// acknowledged under FsyncAlways; under the other policies only a power loss
// can tear, and it loses what the policy says.
//
// After a write or fsync error the store fails: Append and Commit return that
// error until it is closed and reopened, because after a failed fsync the
// kernel may have dropped the dirty pages and the file no longer says what
// was acknowledged. Reopening recovers from what is on disk.
type Disk struct {
	dir  string
	opts DiskOptions
	log  *slog.Logger
	fds  fdCache

	closed atomic.Bool
	failed atomic.Pointer[error]

	mu   sync.Mutex // guards: logs
	logs map[LogID]*diskLog

	dirtyMu sync.Mutex // guards: dirty
	dirty   []*diskLog // logs appended to since their last commit flush

	// Group commit.
	cmu        sync.Mutex // guards: requested, covered, committing
	ccond      sync.Cond
	requested  uint64 // Commit calls so far
	covered    uint64 // Commit calls whose appends a finished commit covered
	committing bool   // a leader is flushing and syncing

	metaMu sync.Mutex // guards: the meta files

	lock *os.File // LOCK, held while open

	stop chan struct{}
	wg   sync.WaitGroup

	syncs    atomic.Int64 // fsync rounds of the commit path (tests look)
	trashSeq atomic.Int64
}

var _ Store = (*Disk)(nil)

// OpenDisk opens (creating when missing) the store in dir.
func OpenDisk(dir string, opts DiskOptions) (*Disk, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(filepath.Join(dir, streamsDir), 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d := &Disk{
		dir:  dir,
		opts: opts,
		log:  opts.Logger,
		logs: make(map[LogID]*diskLog),
		stop: make(chan struct{}),
	}
	lock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d.lock = lock
	d.fds.max = opts.MaxOpenFiles
	d.ccond.L = &d.cmu
	// Finish interrupted DropStreams and SaveMetas.
	if err := d.cleanup(); err != nil {
		lock.Close()
		return nil, err
	}
	if opts.Fsync == FsyncInterval {
		d.wg.Add(1)
		go d.syncLoop()
	}
	return d, nil
}

// cleanup finishes interrupted DropStreams and SaveMetas.
func (d *Disk) cleanup() error {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), trashPfx) {
			if err := os.RemoveAll(filepath.Join(d.dir, e.Name())); err != nil {
				return fmt.Errorf("store: removing dropped stream: %w", err)
			}
		}
	}
	os.Remove(filepath.Join(d.dir, metaFile+".tmp"))
	if err := syncDir(d.dir); err != nil {
		return fmt.Errorf("store: %w", err)
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

// Log opens the log of one shard, recovering it from disk the first time.
func (d *Disk) Log(id LogID) (Log, error) {
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
	l, err := d.openLog(id)
	if err != nil {
		return nil, err
	}
	d.logs[id] = l
	return l, nil
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
		if err := syncDir(d.dir); err != nil {
			return fmt.Errorf("store: dropping stream %q: %w", stream, err)
		}
		if err := syncDir(filepath.Join(d.dir, streamsDir)); err != nil {
			return fmt.Errorf("store: dropping stream %q: %w", stream, err)
		}
	}
	if err := os.RemoveAll(trash); err != nil {
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
	if _, err := os.Stat(src); os.IsNotExist(err) {
		return "", nil
	}
	trash := filepath.Join(d.dir, fmt.Sprintf("%s%d-%d", trashPfx, time.Now().UnixNano(), d.trashSeq.Add(1)))
	if err := os.Rename(src, trash); err != nil {
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
// the leader and commits every dirty log; callers arriving meanwhile wait
// for the next round, which a single leader again runs for all of them.
func (d *Disk) Commit() error {
	if err := d.check(); err != nil {
		return err
	}
	d.cmu.Lock()
	d.requested++
	me := d.requested
	for d.covered < me {
		if d.committing {
			d.ccond.Wait()
			continue
		}
		if d.closed.Load() {
			d.cmu.Unlock()
			return ErrClosed
		}
		// Every Commit counted so far made its appends before counting
		// itself, so this round covers all of them.
		target := d.requested
		d.committing = true
		d.cmu.Unlock()
		err := d.commitRound()
		d.cmu.Lock()
		d.committing = false
		d.covered = target
		d.ccond.Broadcast()
		if err != nil {
			d.cmu.Unlock()
			return err
		}
	}
	d.cmu.Unlock()
	// A round that covered this call may have failed while it waited.
	return d.check()
}

// commitRound flushes every dirty log, fsyncs per the policy and publishes.
func (d *Disk) commitRound() error {
	d.dirtyMu.Lock()
	logs := d.dirty
	d.dirty = nil
	d.dirtyMu.Unlock()
	if len(logs) == 0 {
		return nil
	}
	type work struct {
		l   *diskLog
		t   pubTarget
		job syncJob
	}
	ws := make([]work, 0, len(logs))
	for _, l := range logs {
		l.dirty.Store(false)
		t, job, err := l.flushForCommit(d.opts.Fsync == FsyncAlways)
		if err != nil {
			return d.fail(err)
		}
		ws = append(ws, work{l, t, job})
	}
	if d.opts.Fsync == FsyncAlways {
		d.syncs.Add(1)
		jobs := make([]syncJob, len(ws))
		for i := range ws {
			jobs[i] = ws[i].job
		}
		if err := runSyncJobs(jobs); err != nil {
			return d.fail(err)
		}
	}
	for _, w := range ws {
		w.l.publish(w.t)
	}
	return nil
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

// syncLoop fsyncs every log's written data on the interval (FsyncInterval).
func (d *Disk) syncLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.opts.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		if err := d.syncAll(); err != nil {
			d.fail(err)
		}
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
// file, fsyncs it, renames it over the old one and fsyncs the directory (all
// policies: the document is small and rarely written).
func (d *Disk) SaveMeta(doc []byte) error {
	if d.closed.Load() {
		return ErrClosed
	}
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	tmp := filepath.Join(d.dir, metaFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("store: saving meta: %w", err)
	}
	_, err = f.Write(doc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.dir, metaFile))
	}
	if err == nil {
		err = syncDir(d.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: saving meta: %w", err)
	}
	return nil
}

// LoadMeta returns the last saved metadata document, or nil when none.
func (d *Disk) LoadMeta() ([]byte, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	b, err := os.ReadFile(filepath.Join(d.dir, metaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: loading meta: %w", err)
	}
	return b, nil
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
	// Wait for a commit round in flight, and keep new ones out.
	d.cmu.Lock()
	for d.committing {
		d.ccond.Wait()
	}
	d.committing = true
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
	d.committing = false
	d.covered = d.requested
	d.ccond.Broadcast()
	d.cmu.Unlock()
	return err
}
