package store

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const segSuffix = ".seg"

// segmentName is the file name of the segment whose first record has
// position first: zero-padded so names sort like positions.
func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// parseSegmentName returns the first position named by a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// indexEntry is one point of a segment's sparse index.
type indexEntry struct {
	pos     uint64
	off     int64
	arrival int64
}

// segment is one file of a log. The fields up to index are guarded by the
// owning log's mu; rf, refs, removed and elem by the fdCache's mu.
type segment struct {
	path  string
	first uint64

	next         uint64 // one past the last appended record
	size         int64  // bytes appended, including those still buffered
	written      int64  // bytes written to the file
	firstArrival int64
	lastArrival  int64
	index        []indexEntry // first entry at offset 0 once a record exists
	indexedAt    int64        // offset of the last index entry

	rf      File // read handle, opened lazily
	refs    int
	removed bool
	elem    *list.Element // in fdCache.lru while open and unreferenced
}

// addRecord accounts for a record of frame length n at the segment's end.
func (s *segment) addRecord(pos uint64, arrival int64, n int, every int64) {
	if s.next == s.first || s.size-s.indexedAt >= every {
		s.index = append(s.index, indexEntry{pos: pos, off: s.size, arrival: arrival})
		s.indexedAt = s.size
	}
	if s.next == s.first {
		s.firstArrival = arrival
	}
	s.lastArrival = arrival
	s.next = pos + 1
	s.size += int64(n)
}

// seekPos returns the index entry to start scanning from to find pos.
func (s *segment) seekPos(pos uint64) indexEntry {
	i := searchIndex(len(s.index), func(i int) bool { return s.index[i].pos > pos })
	if i == 0 {
		return indexEntry{pos: s.first}
	}
	return s.index[i-1]
}

// seekArrival returns the index entry to start scanning from to find the
// first record arriving at or after milli.
func (s *segment) seekArrival(milli int64) indexEntry {
	i := searchIndex(len(s.index), func(i int) bool { return s.index[i].arrival >= milli })
	if i == 0 {
		return indexEntry{pos: s.first}
	}
	return s.index[i-1]
}

func searchIndex(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !f(m) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// errSegmentGone: the segment was trimmed or dropped before it could be read.
var errSegmentGone = errors.New("store: segment removed")

// fdCache bounds the read handles kept open across all logs. Handles in use
// are never closed; idle ones are closed least recently used first.
type fdCache struct {
	fs   FS
	mu   sync.Mutex // guards: lru, open, and every segment's rf, refs, removed, elem
	lru  list.List  // idle segments with an open rf, most recent at the front
	open int
	max  int
}

// acquire returns a read handle on s, which stays open until release.
func (c *fdCache) acquire(s *segment) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.removed {
		return nil, errSegmentGone
	}
	if s.rf == nil {
		f, err := c.fs.OpenFile(s.path, os.O_RDONLY, 0)
		if err != nil && IsOutOfFiles(err) {
			c.closeIdleLocked()
			f, err = c.fs.OpenFile(s.path, os.O_RDONLY, 0)
		}
		if err != nil {
			return nil, err
		}
		s.rf = f
		c.open++
	}
	if s.elem != nil {
		c.lru.Remove(s.elem)
		s.elem = nil
	}
	s.refs++
	c.evict()
	return s.rf, nil
}

func (c *fdCache) release(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.refs--
	if s.refs > 0 {
		return
	}
	if s.removed {
		c.closeLocked(s)
		return
	}
	s.elem = c.lru.PushFront(s)
	c.evict()
}

// remove marks s gone; its handle closes once no reader holds it.
func (c *fdCache) remove(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.removed = true
	if s.refs == 0 {
		c.closeLocked(s)
	}
}

func (c *fdCache) closeLocked(s *segment) {
	if s.elem != nil {
		c.lru.Remove(s.elem)
		s.elem = nil
	}
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
		c.open--
	}
}

func (c *fdCache) evict() {
	for c.open > c.max {
		e := c.lru.Back()
		if e == nil {
			return
		}
		c.closeLocked(e.Value.(*segment))
	}
}

// closeAll closes every idle handle (at store Close, and to free handles
// when the process has run out).
func (c *fdCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeIdleLocked()
}

func (c *fdCache) closeIdleLocked() {
	for e := c.lru.Front(); e != nil; {
		next := e.Next()
		c.closeLocked(e.Value.(*segment))
		e = next
	}
}

// writerLRU bounds the write handles of active segments across all logs:
// the least recently written log's handle is closed (after a flush and a
// sync) and reopened on its next write.
type writerLRU struct {
	mu  sync.Mutex // guards: lru and every diskLog's welem
	lru list.List  // logs with an open write handle, most recent first
	max int
}

// touch marks l's handle open and most recently used. Caller holds l.mu.
func (w *writerLRU) touch(l *diskLog) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l.welem != nil {
		w.lru.MoveToFront(l.welem)
	} else {
		l.welem = w.lru.PushFront(l)
	}
}

// forget removes l (its handle closed). Caller holds l.mu.
func (w *writerLRU) forget(l *diskLog) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l.welem != nil {
		w.lru.Remove(l.welem)
		l.welem = nil
	}
}

// evict closes least recently used handles beyond max (all of them when
// all is set). A log busy under its lock is skipped (never waited for: the
// caller may hold another log's lock); it is closed on a later eviction.
func (w *writerLRU) evict(all bool) {
	w.mu.Lock()
	n := w.lru.Len() - w.max
	if all {
		n = w.lru.Len()
	}
	var victims []*diskLog
	for e := w.lru.Back(); e != nil && len(victims) < n; e = e.Prev() {
		victims = append(victims, e.Value.(*diskLog))
	}
	w.mu.Unlock()
	for _, l := range victims {
		if l.mu.TryLock() {
			l.closeWriterLocked()
			l.mu.Unlock()
		}
	}
}

// openFile opens a file; when the process is out of file handles it closes
// the idle ones the store holds and tries once more.
func (d *Disk) openFile(path string, flag int, perm fs.FileMode) (File, error) {
	f, err := d.fs.OpenFile(path, flag, perm)
	if err != nil && IsOutOfFiles(err) {
		d.fds.closeAll()
		d.writers.evict(true)
		f, err = d.fs.OpenFile(path, flag, perm)
	}
	return f, err
}

// frameReader walks the frames of a file region [off, end) with chunked
// ReadAt calls, so memory stays bounded by the chunk size and the largest
// frame rather than by the file.
type frameReader struct {
	f      File
	end    int64
	chunk  int
	reuse  bool   // frames are not retained: the buffer may be recycled
	buf    []byte // file bytes starting at bufOff
	bufOff int64
	p      int
}

func newFrameReader(f File, off, end int64, chunk int, reuse bool) *frameReader {
	return &frameReader{f: f, end: end, chunk: chunk, reuse: reuse, bufOff: off}
}

// offset is the file offset of the next frame.
func (r *frameReader) offset() int64 { return r.bufOff + int64(r.p) }

// next returns the bytes of the next frame, io.EOF at the region's end,
// errShortFrame when the region ends inside a frame and errBadLength when the
// length field is out of bounds. It does not check the CRC.
func (r *frameReader) next() ([]byte, error) {
	if err := r.fill(4); err != nil {
		return nil, err
	}
	n, err := peekFrameLen(r.buf[r.p:])
	if err != nil {
		return nil, err
	}
	if err := r.fill(n); err != nil {
		if err == io.EOF {
			err = errShortFrame
		}
		return nil, err
	}
	b := r.buf[r.p : r.p+n : r.p+n]
	r.p += n
	return b, nil
}

// fill makes at least need bytes available at r.p.
func (r *frameReader) fill(need int) error {
	have := len(r.buf) - r.p
	if have >= need {
		return nil
	}
	left := r.end - r.offset()
	if left == 0 {
		return io.EOF
	}
	if left < int64(need) {
		return errShortFrame
	}
	size := int64(max(r.chunk, need))
	size = min(size, left)
	var nb []byte
	if r.reuse && int64(cap(r.buf)) >= size {
		nb = r.buf[:size]
		copy(nb, r.buf[r.p:])
	} else {
		nb = make([]byte, size)
		copy(nb, r.buf[r.p:])
	}
	at := r.offset() + int64(have)
	if _, err := r.f.ReadAt(nb[have:], at); err != nil {
		if err == io.EOF {
			return fmt.Errorf("store: %s shorter than expected at offset %d: %w", filepath.Base(r.f.Name()), at, io.ErrUnexpectedEOF)
		}
		return err
	}
	r.bufOff = r.offset()
	r.buf, r.p = nb, 0
	return nil
}
