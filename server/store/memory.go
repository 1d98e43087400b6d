package store

import (
	"sort"
	"sync"
)

// Memory is a Store that keeps everything in memory: fast, lost at exit.
// Commit is a no-op; appended records are visible at once.
type Memory struct {
	mu     sync.Mutex // guards: logs, meta, closed
	logs   map[LogID]*memLog
	meta   []byte
	closed bool
}

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
	for id := range m.logs {
		if id.Stream == stream && id.Created == created {
			delete(m.logs, id)
		}
	}
	return nil
}

func (m *Memory) Commit() error { return nil }

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
	return m.meta, nil
}

func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

type memLog struct {
	mu    sync.RWMutex // guards: first, recs
	first uint64       // position of recs[0]
	recs  []Record
}

func (l *memLog) Append(recs []Record) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	if from < l.first {
		from = l.first
	}
	i := int(from - l.first)
	if i >= len(l.recs) {
		return nil, nil
	}
	end, bytes := i, 0
	for end < len(l.recs) && end-i < maxRecords {
		bytes += l.recs[end].Size()
		if bytes > maxBytes && end > i {
			break
		}
		end++
	}
	return l.recs[i:end:end], nil
}

func (l *memLog) Bounds() (first, next uint64, lastArrival int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if n := len(l.recs); n > 0 {
		lastArrival = l.recs[n-1].ArrivalMilli
	}
	return l.first, l.first + uint64(len(l.recs)), lastArrival
}

func (l *memLog) SeekTime(milli int64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].ArrivalMilli >= milli })
	return l.first + uint64(i), nil
}

func (l *memLog) TrimBefore(milli int64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].ArrivalMilli >= milli })
	if i > 0 {
		l.recs = append([]Record(nil), l.recs[i:]...)
		l.first += uint64(i)
	}
	return l.first, nil
}
