package store

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// errDropped is returned by a log whose stream was dropped.
var errDropped = errors.New("store: log dropped")

// diskLog is one shard's log: a run of segments, the last one active.
//
// Three watermarks: next (assigned by Append), what is written to the
// files (pending holds the rest), and visible (published by a commit; Read,
// Bounds and SeekTime see only positions below it).
type diskLog struct {
	d     *Disk
	id    LogID
	dir   string
	dirty atomic.Bool   // queued in Disk.dirty
	welem *list.Element // in Disk.writers while wf is open; guarded by Disk.writers.mu

	mu          sync.RWMutex // guards: everything below and the log fields of its segments
	gone        error        // ErrClosed or errDropped once shut
	segs        []*segment   // ascending positions; the last is active
	jumps       []jump       // deliberate gaps between segments (recover.go)
	wf          File         // write handle of the active segment; nil while the writer LRU has it closed
	pending     []byte       // frames appended but not yet written
	stuck       error        // the last write failed for want of space: Append refuses until one succeeds
	first       uint64       // trim horizon: segs[0].first
	next        uint64       // next position Append assigns
	lastArrival int64        // arrival of record next-1
	visible     uint64       // positions below are published
	visArrival  int64        // arrival of record visible-1

	sealedUnsynced []File // write handles of sealed segments not fsynced yet
	activeUnsynced bool   // wf has written bytes not fsynced yet
	dirUnsynced    bool   // segment files were created since the last dir fsync
	// syncHolds counts the sync jobs holding wf to fdatasync it; the
	// writer LRU leaves a held handle alone (closeWriterLocked).
	syncHolds int
}

var _ Log = (*diskLog)(nil)

func (l *diskLog) active() *segment { return l.segs[len(l.segs)-1] }

// Append encodes the records into the log's write buffer. They reach the
// file when the buffer fills or at the next Commit. While the log's last
// write failed for want of space, Append first retries it and refuses the
// records when it fails again, so memory stays bounded on a full disk.
func (l *diskLog) Append(recs []Record) (uint64, error) {
	if err := l.d.check(); err != nil {
		return 0, err
	}
	for i := range recs {
		if err := checkRecord(&recs[i]); err != nil {
			return 0, err
		}
	}
	o := &l.d.opts
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	if l.stuck != nil {
		if err := l.flushLocked(); err != nil {
			return 0, l.writeFailed(err)
		}
	}
	first := l.next
	noRoll := false // a segment could not be started in this call
	for i := range recs {
		r := &recs[i]
		n := frameLen(r)
		// While stuck (a write failed in this call) the frames only buffer:
		// retrying every record would only fail again.
		if a := l.active(); a.size > 0 && a.size+int64(n) > o.SegmentBytes && l.stuck == nil && !noRoll {
			// A segment that cannot be started (no inode, no file handle)
			// only makes this one longer: the size limit is a preference.
			if err := l.rollLocked(); err != nil {
				if !isTransient(err) {
					return 0, l.d.fail(fmt.Errorf("starting segment in %s: %w", l.dir, err))
				}
				l.d.log.Warn("store: cannot start a segment; the active one grows", "dir", l.dir, "err", err)
				noRoll = true
			}
		}
		r.Position = l.next
		l.pending = appendFrame(l.pending, r)
		l.active().addRecord(l.next, r.ArrivalMilli, n, o.IndexInterval)
		l.next++
		l.lastArrival = r.ArrivalMilli
		if len(l.pending) >= o.WriteBuffer && l.stuck == nil {
			if err := l.flushLocked(); err != nil && !isTransient(err) {
				return 0, l.d.fail(err)
			}
			// A full disk: the frames stay buffered for the commit to retry.
		}
	}
	if len(recs) > 0 {
		l.d.markDirty(l)
	}
	return first, nil
}

// writeFailed reports a failed write: transient ones leave the store
// working, others fail it.
func (l *diskLog) writeFailed(err error) error {
	if isTransient(err) {
		return fmt.Errorf("store: %w", err)
	}
	return l.d.fail(err)
}

// flushLocked writes the pending frames to the active segment. On failure
// the bytes not written stay pending, so a later flush continues exactly
// where the file ends.
func (l *diskLog) flushLocked() error {
	if len(l.pending) == 0 {
		l.stuck = nil
		return nil
	}
	if err := l.openWriterLocked(); err != nil {
		l.stuck = err
		return err
	}
	n, err := l.wf.Write(l.pending)
	a := l.active()
	a.written += int64(n)
	if n > 0 {
		l.activeUnsynced = true
	}
	if err != nil {
		l.pending = append(l.pending[:0], l.pending[n:]...)
		err = fmt.Errorf("writing %s: %w", a.path, err)
		l.stuck = err
		return err
	}
	l.stuck = nil
	if cap(l.pending) > 2*l.d.opts.WriteBuffer {
		l.pending = nil // a huge record went through; don't keep its buffer
	} else {
		l.pending = l.pending[:0]
	}
	return nil
}

// openWriterLocked makes sure the active segment has a write handle,
// reopening it when the writer LRU closed it.
func (l *diskLog) openWriterLocked() error {
	if l.wf != nil {
		l.d.writers.touch(l)
		return nil
	}
	a := l.active()
	f, err := l.d.openFile(a.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.Seek(a.written, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	l.wf = f
	l.d.writers.touch(l)
	l.d.writers.evict(false)
	return nil
}

// closeWriterLocked closes an idle log's write handle (writer LRU), after
// writing and syncing what it holds. It leaves alone a handle that a sync
// job holds: two fdatasyncs of one file at once may report a write-back
// error to only one of them, and a commit round that missed it would
// publish records the kernel dropped. It reports whether the handle is
// closed.
func (l *diskLog) closeWriterLocked() bool {
	if l.wf == nil {
		return true
	}
	if l.syncHolds > 0 {
		return false
	}
	if l.flushLocked() != nil {
		return false
	}
	if l.d.opts.Fsync != FsyncNever {
		if err := l.wf.Datasync(); err != nil {
			l.d.fail(err)
			return false
		}
	}
	if err := l.wf.Close(); err != nil {
		l.d.log.Warn("store: closing segment", "file", l.active().path, "err", err)
	}
	l.wf = nil
	l.activeUnsynced = false
	l.d.writers.forget(l)
	return true
}

// rollLocked seals the active segment and starts a new one at next.
func (l *diskLog) rollLocked() error {
	if err := l.flushLocked(); err != nil {
		return err
	}
	path := filepath.Join(l.dir, segmentName(l.next))
	f, err := l.d.openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	switch {
	case l.wf == nil:
		// Closed by the LRU, which synced it first.
	case l.d.opts.Fsync == FsyncNever:
		l.wf.Close()
	default:
		l.sealedUnsynced = append(l.sealedUnsynced, l.wf)
	}
	if l.d.opts.Fsync != FsyncNever {
		l.dirUnsynced = true
	}
	l.d.writers.forget(l)
	l.wf = f
	l.d.writers.touch(l)
	l.activeUnsynced = false
	l.segs = append(l.segs, &segment{path: path, first: l.next, next: l.next})
	return nil
}

// pubTarget is what a commit publishes once its sync is done.
type pubTarget struct {
	ok      bool
	next    uint64
	arrival int64
}

// flushForCommit writes the pending frames and returns what to publish and,
// when withSync, what to fsync before publishing.
func (l *diskLog) flushForCommit(withSync bool) (pubTarget, syncJob, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return pubTarget{}, syncJob{}, nil
	}
	if err := l.flushLocked(); err != nil {
		return pubTarget{}, syncJob{}, err
	}
	var job syncJob
	if withSync {
		job = l.takeSyncLocked()
	}
	return pubTarget{ok: true, next: l.next, arrival: l.lastArrival}, job, nil
}

func (l *diskLog) publish(t pubTarget) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.ok && l.gone == nil && t.next > l.visible {
		l.visible, l.visArrival = t.next, t.arrival
	}
}

// syncJob is the fsync work of one log: sealed segments (closed afterwards),
// the active segment and the directory. It holds its log's write handle
// (holders) until it has run or is dropped (release).
type syncJob struct {
	d       *Disk
	sealed  []File
	active  File
	dir     string
	holders []*diskLog
}

// release gives back the job's holds on write handles; the job must not run
// afterwards.
func (j syncJob) release() {
	for _, l := range j.holders {
		l.mu.Lock()
		l.syncHolds--
		l.mu.Unlock()
	}
}

func (j syncJob) empty() bool { return len(j.sealed) == 0 && j.active == nil && j.dir == "" }

// run fsyncs the job's files, then releases its holds.
func (j syncJob) run() error {
	defer j.release()
	var err error
	for _, f := range j.sealed {
		if e := f.Datasync(); e != nil && err == nil {
			err = e
		}
		f.Close()
	}
	if j.active != nil {
		// A log shut synced itself first.
		if e := j.active.Datasync(); e != nil && !errors.Is(e, os.ErrClosed) && err == nil {
			err = e
		}
	}
	if j.dir != "" {
		if e := j.d.fs.SyncDir(j.dir); e != nil && !errors.Is(e, os.ErrNotExist) && err == nil {
			err = e
		}
	}
	return err
}

// then is j followed by b, a later job of the same log, as one job that
// syncs each file once: a file j holds as active and b as sealed (a roll in
// between) is synced as sealed, and b's active handle replaces j's (files
// are told apart by path: a handle the writer LRU closed and reopened in
// between was synced before it closed).
func (j syncJob) then(b syncJob) syncJob {
	if j.empty() {
		return b
	}
	if b.empty() {
		return j
	}
	m := syncJob{d: j.d, sealed: slices.Concat(j.sealed, b.sealed), active: b.active, dir: cmp.Or(b.dir, j.dir),
		holders: slices.Concat(j.holders, b.holders)}
	if m.active == nil && j.active != nil && !slices.ContainsFunc(b.sealed, func(f File) bool { return f.Name() == j.active.Name() }) {
		m.active = j.active
	}
	return m
}

func (l *diskLog) takeSyncLocked() syncJob {
	j := syncJob{d: l.d, sealed: l.sealedUnsynced}
	l.sealedUnsynced = nil
	if l.activeUnsynced && l.wf != nil {
		j.active = l.wf
		l.activeUnsynced = false
		l.syncHolds++
		j.holders = []*diskLog{l}
	}
	if l.dirUnsynced {
		j.dir = l.dir
		l.dirUnsynced = false
	}
	return j
}

// takeSync hands the background syncer what the log wrote since the last sync.
func (l *diskLog) takeSync() syncJob {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return syncJob{}
	}
	return l.takeSyncLocked()
}

// shut closes the log: at store Close (keep=true: write and fsync what is
// buffered) or at DropStream (keep=false: discard).
func (l *diskLog) shut(keep bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return nil
	}
	var err error
	if keep {
		l.gone = ErrClosed
		if len(l.pending) > 0 {
			err = l.flushLocked()
		}
		for _, f := range l.sealedUnsynced {
			if e := f.Datasync(); e != nil && err == nil {
				err = e
			}
		}
		if l.wf != nil {
			if e := l.wf.Datasync(); e != nil && err == nil {
				err = e
			}
		}
		if l.dirUnsynced {
			if e := l.d.fs.SyncDir(l.dir); e != nil && err == nil {
				err = e
			}
		}
	} else {
		l.gone = errDropped
	}
	for _, f := range l.sealedUnsynced {
		f.Close()
	}
	l.sealedUnsynced = nil
	if l.wf != nil {
		l.wf.Close()
		l.wf = nil
	}
	l.d.writers.forget(l)
	l.pending = nil
	for _, s := range l.segs {
		l.d.fds.remove(s)
	}
	return err
}

// Read returns visible records from position from on, streaming them from
// the segment files: it holds the log's lock only to find where to read. The
// records and their bytes are in memory of their own.
func (l *diskLog) Read(from uint64, maxRecords, maxBytes int) ([]Record, error) {
	return l.ReadInto(&ReadBuffer{}, from, maxRecords, maxBytes)
}

var _ BufferedReader = (*diskLog)(nil)

// ReadInto is Read into buf: the frames are read through buf's chunk and
// each record's key and data copied into buf.Bytes, so a reader that reuses
// buf allocates nothing per record or per call.
func (l *diskLog) ReadInto(buf *ReadBuffer, from uint64, maxRecords, maxBytes int) ([]Record, error) {
	if maxRecords <= 0 {
		return nil, nil
	}
	rs := readState{buf: buf, out: buf.Records[:0], bytes: buf.Bytes[:0], spans: buf.spans[:0]}
	err := l.read(&rs, from, maxRecords, maxBytes)
	return rs.finish(), err
}

// readState is what a ReadInto has read so far. Records get their key and
// data only at the end (finish), because rs.bytes may move as it grows.
type readState struct {
	buf   *ReadBuffer
	out   []Record
	bytes []byte // every record's key and data, back to back
	spans []int  // per record: its offset in bytes and its key's length
	size  int    // the records' Size() so far
}

// reserve sizes the buffer once for a read of at most records records and
// bytes bytes, going by the average frame of s, so that a large read does not
// grow it step by step (each step fresh memory and a copy). Caller holds the
// log's lock.
func (rs *readState) reserve(s *segment, records uint64, bytes int64) {
	if n := s.next - s.first; n > 0 {
		bytes = min(bytes, int64(records)*(s.size/int64(n)))
	}
	rs.out = slices.Grow(rs.out, int(records))
	rs.spans = slices.Grow(rs.spans, 2*int(records))
	rs.bytes = slices.Grow(rs.bytes, int(bytes))
}

// add copies the record of frame v in.
func (rs *readState) add(v *frameView) {
	rs.spans = append(rs.spans, len(rs.bytes), len(v.key))
	rs.bytes = append(rs.bytes, v.key...)
	rs.bytes = append(rs.bytes, v.data...)
	rs.out = append(rs.out, Record{Position: v.position, ArrivalMilli: v.arrival})
	rs.size += len(v.key) + len(v.data)
}

// finish points the records' keys and data into rs.bytes, hands the grown
// memory back to the buffer and returns the records (nil when none).
func (rs *readState) finish() []Record {
	if rs.bytes == nil {
		rs.bytes = []byte{} // empty records carry empty, not nil, data
	}
	for i := range rs.out {
		off, k := rs.spans[2*i], rs.spans[2*i+1]
		end := len(rs.bytes)
		if i+1 < len(rs.out) {
			end = rs.spans[2*i+2]
		}
		r := &rs.out[i]
		r.PartitionKey = ""
		if k > 0 {
			r.PartitionKey = unsafe.String(&rs.bytes[off], k)
		}
		r.Data = rs.bytes[off+k : end : end]
	}
	rs.buf.Records, rs.buf.Bytes, rs.buf.spans = rs.out, rs.bytes, rs.spans
	if len(rs.out) == 0 {
		return nil
	}
	return rs.out
}

// read adds to rs the visible records from position from on.
func (l *diskLog) read(rs *readState, from uint64, maxRecords, maxBytes int) error {
	for {
		l.mu.RLock()
		if l.gone != nil {
			l.mu.RUnlock()
			rs.out = rs.out[:0]
			return l.gone
		}
		if from < l.first {
			if len(rs.out) > 0 {
				// Trimmed under our feet: what we have is still a prefix.
				l.mu.RUnlock()
				return nil
			}
			from = l.first
		}
		stop := l.visible
		if from >= stop {
			l.mu.RUnlock()
			return nil
		}
		s := l.segFor(from)
		if from >= s.next && s != l.active() {
			// A gap left by a recovery that truncated (recover.go).
			from = l.segs[searchIndex(len(l.segs), func(i int) bool { return l.segs[i].first > from })].first
			l.mu.RUnlock()
			continue
		}
		start := s.seekPos(from)
		end := s.written
		if len(rs.out) == 0 {
			rs.reserve(s, min(uint64(maxRecords), stop-from), min(int64(maxBytes), end-start.off))
		}
		f, err := l.d.fds.acquire(s)
		l.mu.RUnlock()
		if err != nil {
			if errors.Is(err, errSegmentGone) {
				continue // trimmed or dropped; the next round sees why
			}
			return fmt.Errorf("store: reading %s: %w", s.path, err)
		}
		pos, done, err := l.readSegment(rs, f, s, start, end, from, stop, maxRecords, maxBytes)
		l.d.fds.release(s)
		if err != nil || done {
			return err
		}
		if pos == from {
			return fmt.Errorf("store: %s: no record %d below offset %d", s.path, from, end)
		}
		from = pos
	}
}

// segFor returns the segment holding pos, which must be in [first, next).
func (l *diskLog) segFor(pos uint64) *segment {
	i := searchIndex(len(l.segs), func(i int) bool { return l.segs[i].first > pos })
	return l.segs[i-1]
}

// readSegment adds to rs the records of s from position from, starting the
// scan at index entry start and reading no further than offset end or
// position stop, through the buffer's chunk. It returns the position after
// the last frame scanned and whether a limit was reached.
func (l *diskLog) readSegment(rs *readState, f File, s *segment, start indexEntry, end int64, from, stop uint64,
	maxRecords, maxBytes int) (uint64, bool, error) {
	fr := newFrameReader(f, start.off, end, l.d.opts.ReadChunk, true)
	fr.buf = rs.buf.chunk[:0]
	defer func() {
		if cap(fr.buf) <= 2*l.d.opts.ReadChunk { // not a huge record's
			rs.buf.chunk = fr.buf[:0]
		}
	}()
	pos := start.pos
	for pos < stop {
		off := fr.offset()
		b, err := fr.next()
		if err == io.EOF {
			return pos, false, nil
		}
		if err != nil {
			return pos, true, corruptErr(s, off, err)
		}
		if pos < from {
			h, err := decodeHeader(b)
			if err == nil && h.position != pos {
				err = errBadPosition
			}
			if err != nil {
				return pos, true, corruptErr(s, off, err)
			}
			pos++
			continue
		}
		v, _, err := viewFrame(b)
		if err == nil && v.position != pos {
			err = fmt.Errorf("%w: %d where %d belongs", errBadPosition, v.position, pos)
		}
		if err != nil {
			return pos, true, corruptErr(s, off, err)
		}
		if len(rs.out) > 0 && rs.size+len(v.key)+len(v.data) > maxBytes {
			return pos, true, nil
		}
		rs.add(&v)
		pos++
		if len(rs.out) >= maxRecords {
			return pos, true, nil
		}
	}
	return pos, true, nil
}

// ErrCorrupt wraps a checksum or framing failure found while reading.
var ErrCorrupt = errors.New("store: corrupt segment")

func corruptErr(s *segment, off int64, err error) error {
	if errors.Is(err, errShortFrame) || errors.Is(err, errBadLength) || errors.Is(err, errBadCRC) || errors.Is(err, errBadPosition) {
		return fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, s.path, off, err)
	}
	return fmt.Errorf("store: reading %s at offset %d: %w", s.path, off, err)
}

// Bounds returns the trim horizon, the visible end and the last visible arrival.
func (l *diskLog) Bounds() (first, next uint64, lastArrival int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.visible == l.first {
		return l.first, l.visible, 0
	}
	return l.first, l.visible, l.visArrival
}

// SeekTime finds the first visible record arriving at or after milli, using
// the segments' arrival ranges and sparse indexes, then scanning headers.
func (l *diskLog) SeekTime(milli int64) (uint64, error) {
	l.mu.RLock()
	if l.gone != nil {
		l.mu.RUnlock()
		return 0, l.gone
	}
	stop := l.visible
	var s *segment
	for _, c := range l.segs {
		if c.first >= stop {
			break
		}
		if c.next > c.first && c.lastArrival >= milli {
			s = c
			break
		}
	}
	if s == nil {
		l.mu.RUnlock()
		return stop, nil
	}
	if s.firstArrival >= milli {
		l.mu.RUnlock()
		return s.first, nil
	}
	start := s.seekArrival(milli)
	end := s.written
	f, err := l.d.fds.acquire(s)
	l.mu.RUnlock()
	if err != nil {
		if errors.Is(err, errSegmentGone) {
			return l.SeekTime(milli)
		}
		return 0, fmt.Errorf("store: reading %s: %w", s.path, err)
	}
	defer l.d.fds.release(s)
	fr := newFrameReader(f, start.off, end, min(l.d.opts.ReadChunk, 64<<10), true)
	for pos := start.pos; pos < stop; pos++ {
		off := fr.offset()
		if err := fr.fill(frameHeaderLen); err != nil {
			if err == io.EOF {
				return min(pos, stop), nil
			}
			return 0, corruptErr(s, off, err)
		}
		h, err := decodeHeader(fr.buf[fr.p:])
		if err == nil && h.position != pos {
			err = errBadPosition
		}
		if err != nil {
			return 0, corruptErr(s, off, err)
		}
		if h.arrival >= milli {
			return pos, nil
		}
		// Skip the frame without reading its payload.
		if fr.p+h.length <= len(fr.buf) {
			fr.p += h.length
		} else {
			fr.bufOff, fr.buf, fr.p = off+int64(h.length), fr.buf[:0], 0
		}
	}
	return stop, nil
}

// TrimBefore removes leading segments whose every record arrived before
// milli and is visible. When only the active segment is left and it is
// entirely old and committed, a new empty segment takes its place so that it
// can go too (this is what lets a quiet shard empty itself).
func (l *diskLog) TrimBefore(milli int64) (uint64, error) {
	if err := l.d.check(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	syncDirs := l.d.opts.Fsync != FsyncNever
	if err := l.trimSealedLocked(milli, syncDirs); err != nil {
		return l.first, err
	}
	if len(l.segs) == 1 {
		a := l.active()
		if a.next > a.first && a.lastArrival < milli && l.visible == l.next && len(l.pending) == 0 {
			if err := l.rollLocked(); err != nil {
				return l.first, l.writeFailed(err)
			}
			// The new segment must exist on disk before the old one goes, or
			// a crash could lose the position the log had reached.
			if syncDirs {
				if err := l.d.fs.SyncDir(l.dir); err != nil {
					return l.first, l.d.fail(err)
				}
				l.dirUnsynced = false
			}
			if err := l.trimSealedLocked(milli, syncDirs); err != nil {
				return l.first, err
			}
		}
	}
	return l.first, nil
}

// trimSealedLocked removes leading sealed segments that are entirely visible
// and older than milli.
func (l *diskLog) trimSealedLocked(milli int64, syncDirs bool) error {
	for len(l.segs) > 1 {
		s := l.segs[0]
		if s.next > l.visible || (s.next > s.first && s.lastArrival >= milli) {
			break
		}
		if err := l.d.fs.Remove(s.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("store: trimming %s: %w", s.path, err)
		}
		// One directory sync per removal keeps the removals in order on
		// disk, so a crash leaves a prefix trimmed, never a hole.
		if syncDirs {
			if err := l.d.fs.SyncDir(l.dir); err != nil {
				return fmt.Errorf("store: trimming %s: %w", s.path, err)
			}
		}
		l.d.fds.remove(s)
		l.segs[0] = nil
		l.segs = l.segs[1:]
		l.first = l.segs[0].first
	}
	return nil
}
