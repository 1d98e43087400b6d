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
		l = &memLog{}
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

// Commit publishes every appended record to readers.
func (m *Memory) Commit() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, l := range m.logs {
		l.publish()
	}
	return nil
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

type memLog struct {
	mu      sync.RWMutex // guards: first, recs, visible, gone
	first   uint64       // position of recs[0]
	recs    []Record
	visible int   // recs[:visible] are published
	gone    error // set when the store closed or the stream was dropped
}

func (l *memLog) shut(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone = err
}

func (l *memLog) publish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.visible = len(l.recs)
}

func (l *memLog) Append(recs []Record) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	first := l.first + uint64(len(l.recs))
	for i := range recs {
		recs[i].Position = first + uint64(i)
	}
	l.recs = append(l.recs, recs...)
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
		bytes += l.recs[end].Size()
		if bytes > maxBytes && end > i {
			break
		}
		end++
	}
	if end == i {
		return nil, nil
	}
	return l.recs[i:end:end], nil
}

func (l *memLog) Bounds() (first, next uint64, lastArrival int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.visible > 0 {
		lastArrival = l.recs[l.visible-1].ArrivalMilli
	}
	return l.first, l.first + uint64(l.visible), lastArrival
}

func (l *memLog) SeekTime(milli int64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.gone != nil {
		return 0, l.gone
	}
	i := sort.Search(l.visible, func(i int) bool { return l.recs[i].ArrivalMilli >= milli })
	return l.first + uint64(i), nil
}

func (l *memLog) TrimBefore(milli int64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	i := sort.Search(l.visible, func(i int) bool { return l.recs[i].ArrivalMilli >= milli })
	if i > 0 {
		l.recs = append([]Record(nil), l.recs[i:]...)
		l.first += uint64(i)
		l.visible -= i
	}
	return l.first, nil
}
