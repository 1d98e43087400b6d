package store

import (
	"sort"
	"sync"
)

// Memory is a Store that keeps everything in memory: fast, lost at exit.
// Appended records become visible at the next Commit, as with every Store.
type Memory struct {
	mu     sync.Mutex // guards: logs, meta, closed
	logs   map[LogID]*memLog
	meta   []byte
	closed bool

	dirtyMu sync.Mutex // guards: dirty
	dirty   []*memLog  // logs appended to since the last Commit
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{logs: make(map[LogID]*memLog)} }

func (m *Memory) Log(id LogID) (Log, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	l, ok := m.logs[id]
	if !ok {
		l = &memLog{m: m}
		m.logs[id] = l
	}
	return l, nil
}

func (m *Memory) DropStream(stream string, created int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for id, l := range m.logs {
		if id.Stream == stream && id.Created == created {
			l.shut(errDropped)
			delete(m.logs, id)
		}
	}
	return nil
}

// Commit publishes the records appended since the last Commit. Only logs
// that were appended to are touched.
func (m *Memory) Commit() error {
	m.dirtyMu.Lock()
	dirty := m.dirty
	m.dirty = nil
	m.dirtyMu.Unlock()
	for _, l := range dirty {
		l.publish()
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return nil
}

func (m *Memory) markDirty(l *memLog) {
	m.dirtyMu.Lock()
	m.dirty = append(m.dirty, l)
	m.dirtyMu.Unlock()
}

func (m *Memory) SaveMeta(doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.meta = append([]byte(nil), doc...)
	return nil
}

func (m *Memory) LoadMeta() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.meta, nil
}

func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, l := range m.logs {
		l.shut(ErrClosed)
	}
	return nil
}

// memChunk is how many records one chunk holds: appends never copy old
// records, and trimming frees whole chunks.
const memChunk = 4096

type memLog struct {
	m *Memory

	mu      sync.RWMutex // guards: first, off, chunks, n, visible, dirty, gone
	first   uint64       // position of the first retained record
	off     int          // index of the first retained record in chunks[0]
	chunks  [][]Record   // full chunks of memChunk records, the last one filling
	n       int          // retained records
	visible int          // the first visible records are published
	dirty   bool         // appended since the last publish
	gone    error        // set when the store closed or the stream was dropped
}

// at returns the i-th retained record. Caller holds l.mu.
func (l *memLog) at(i int) *Record {
	g := l.off + i
	return &l.chunks[g/memChunk][g%memChunk]
}

func (l *memLog) shut(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone = err
}

func (l *memLog) publish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.visible, l.dirty = l.n, false
}

func (l *memLog) Append(recs []Record) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	first := l.first + uint64(l.n)
	for i := range recs {
		recs[i].Position = first + uint64(i)
		last := len(l.chunks) - 1
		if last < 0 || len(l.chunks[last]) == memChunk {
			l.chunks = append(l.chunks, make([]Record, 0, memChunk))
			last++
		}
		l.chunks[last] = append(l.chunks[last], recs[i])
	}
	l.n += len(recs)
	if !l.dirty && len(recs) > 0 {
		l.dirty = true
		l.m.markDirty(l)
	}
	return first, nil
}

func (l *memLog) Read(from uint64, maxRecords, maxBytes int) ([]Record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.gone != nil {
		return nil, l.gone
	}
	if from < l.first {
		from = l.first
	}
	if from-l.first >= uint64(l.visible) {
		return nil, nil
	}
	i := int(from - l.first)
	end, bytes := i, 0
	for end < l.visible && end-i < maxRecords {
		bytes += l.at(end).Size()
		if bytes > maxBytes && end > i {
			break
		}
		end++
	}
	out := make([]Record, 0, end-i)
	for j := i; j < end; {
		g := l.off + j
		chunk := l.chunks[g/memChunk]
		k := g % memChunk
		take := min(end-j, len(chunk)-k)
		out = append(out, chunk[k:k+take]...)
		j += take
	}
	return out, nil
}

func (l *memLog) Bounds() (first, next uint64, lastArrival int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.visible > 0 {
		lastArrival = l.at(l.visible - 1).ArrivalMilli
	}
	return l.first, l.first + uint64(l.visible), lastArrival
}

func (l *memLog) SeekTime(milli int64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.gone != nil {
		return 0, l.gone
	}
	i := sort.Search(l.visible, func(i int) bool { return l.at(i).ArrivalMilli >= milli })
	return l.first + uint64(i), nil
}

func (l *memLog) TrimBefore(milli int64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	i := sort.Search(l.visible, func(i int) bool { return l.at(i).ArrivalMilli >= milli })
	if i > 0 {
		l.off += i
		drop := l.off / memChunk
		for k := 0; k < drop; k++ {
			l.chunks[k] = nil
		}
		l.chunks = l.chunks[drop:]
		l.off -= drop * memChunk
		l.first += uint64(i)
		l.n -= i
		l.visible -= i
	}
	return l.first, nil
}
