package store

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"unsafe"
)

// Memory is a Store that keeps everything in memory: fast, lost at exit.
// Appended records become visible at the next Commit, as with every Store.
type Memory struct {
	mu     sync.Mutex // guards: logs, meta, closed
	logs   map[LogID]*memLog
	meta   []byte
	closed bool

	// commitMu is held by a Commit from taking the dirty logs until they
	// are published, so a Commit that finds none still returns only after
	// an earlier Commit, which may have taken the caller's log, published it.
	commitMu sync.Mutex
	dirtyMu  sync.Mutex // guards: dirty
	dirty    []*memLog  // logs appended to since the last Commit

	blocks blockPool // trimmed blocks, for the next appends
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

// Commit publishes the records appended since the last Commit: when it
// returns, every record appended before it was called is visible. Only logs
// that were appended to are touched.
func (m *Memory) Commit() error {
	m.commitMu.Lock()
	m.dirtyMu.Lock()
	dirty := m.dirty
	m.dirty = nil
	m.dirtyMu.Unlock()
	for _, l := range dirty {
		l.publish()
	}
	m.commitMu.Unlock()
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
	m.blocks.drain()
	return nil
}

// memChunk is how many records one chunk of the index holds: appends never
// copy old entries, and trimming frees whole chunks.
const memChunk = 4096

// The blocks that hold the records' bytes grow from memFirstBlock to
// memBlockSize, four times at a time, so a log of a few records takes a few
// pages and a busy one large blocks (backed by huge pages where the system
// allows: one fault per 2 MiB instead of per 4 KiB). A record larger than
// the next block gets a block of its own size.
const (
	memFirstBlock = 64 << 10
	memBlockSize  = 4 << 20
)

// nextBlockSize is the size of the block after one of size prev (0: none).
func nextBlockSize(prev int) int {
	return min(memBlockSize, max(memFirstBlock, 4*prev))
}

// memFreeBlocks bounds the trimmed blocks a Memory keeps for reuse (64 MiB):
// a block written once has its pages (huge pages where allowed) backed, and
// on this kind of VM backing a fresh 2 MiB page costs about 3.5 ms, so a
// server past its retention that reuses trimmed blocks skips that cost for
// the next memFreeBlocks*memBlockSize bytes it stores after each trim.
const memFreeBlocks = 16

// blockPool maps blocks, reusing trimmed full-size ones (at most
// memFreeBlocks: more are unmapped). A reused block keeps its old bytes, but
// nothing reads them: a log reads only what its index points to, which an
// append wrote first.
type blockPool struct {
	mu     sync.Mutex // guards: free, reused
	free   [][]byte
	reused int // blocks handed out again (tests look)
}

// get returns a block of size bytes.
func (p *blockPool) get(size int) ([]byte, error) {
	if size == memBlockSize {
		p.mu.Lock()
		if n := len(p.free); n > 0 {
			b := p.free[n-1]
			p.free[n-1] = nil
			p.free = p.free[:n-1]
			p.reused++
			p.mu.Unlock()
			return b, nil
		}
		p.mu.Unlock()
	}
	return mapBlock(size)
}

// put takes back a block no log points into any more.
func (p *blockPool) put(b []byte) {
	if len(b) == memBlockSize {
		p.mu.Lock()
		if len(p.free) < memFreeBlocks {
			p.free = append(p.free, b)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	unmapBlock(b)
}

// drain unmaps the free blocks (at Close).
func (p *blockPool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.free {
		unmapBlock(b)
	}
	p.free = nil
}

// memLog keeps records flat: each record's partition key and data back to
// back in large blocks mapped outside the Go heap, and a 24-byte index entry
// per record on it. No Go object exists per record, so the collector has
// nothing to scan or double, and the RSS is about the bytes stored. Read
// copies what it returns out of the blocks (one allocation per call), so a
// block can be unmapped as soon as it is trimmed, whoever still holds
// records read from it.
type memLog struct {
	m *Memory

	mu      sync.RWMutex // guards: every field below
	first   uint64       // position of the first retained record
	off     int          // index of the first retained record in chunks[0]
	chunks  [][]memEntry // full chunks of memChunk entries, the last one filling
	n       int          // retained records
	visible int          // the first visible records are published
	dirty   bool         // appended since the last publish
	gone    error        // set when the store closed or the stream was dropped

	blocks    []memBlock // blocks in use, oldest first
	blockBase uint32     // absolute number of blocks[0]
}

// memEntry indexes one record: its bytes are block[off : off+size], the
// partition key first.
type memEntry struct {
	arrival int64
	block   uint32 // absolute block number
	off     uint32
	size    uint32 // key + data
	keyLen  uint16
}

type memBlock struct {
	buf  []byte
	used int
}

// at returns the i-th retained entry. Caller holds l.mu.
func (l *memLog) at(i int) *memEntry {
	g := l.off + i
	return &l.chunks[g/memChunk][g%memChunk]
}

// bytes returns the bytes of entry e. Caller holds l.mu.
func (l *memLog) bytes(e *memEntry) []byte {
	return l.blocks[e.block-l.blockBase].buf[e.off : e.off+e.size]
}

// shut ends the log and gives back its blocks: readers hold l.mu while they
// copy from them, so none is reading.
func (l *memLog) shut(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone = err
	for _, b := range l.blocks {
		l.m.blocks.put(b.buf)
	}
	l.blocks, l.chunks = nil, nil
}

func (l *memLog) publish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.visible, l.dirty = l.n, false
}

// Append copies the records in. It plans where every record goes and maps
// the blocks that needs before it changes anything, so a failed mapping
// leaves the log as it was.
func (l *memLog) Append(recs []Record) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	for i := range recs {
		if len(recs[i].PartitionKey) > 1<<16-1 || len(recs[i].PartitionKey)+len(recs[i].Data) > 1<<32-1 {
			return 0, fmt.Errorf("store: record %d of %d key and %d data bytes is larger than the memory store holds", i, len(recs[i].PartitionKey), len(recs[i].Data))
		}
	}
	// Plan: how many new blocks, of which sizes.
	var fresh []int
	room, prev := -1, 0 // no block yet: even an empty record needs one
	if k := len(l.blocks); k > 0 {
		room, prev = len(l.blocks[k-1].buf)-l.blocks[k-1].used, len(l.blocks[k-1].buf)
	}
	for i := range recs {
		n := len(recs[i].PartitionKey) + len(recs[i].Data)
		if n > room {
			size := max(nextBlockSize(prev), n)
			fresh = append(fresh, size)
			room, prev = size, size
		}
		room -= n
	}
	mapped := make([]memBlock, 0, len(fresh))
	for _, size := range fresh {
		buf, err := l.m.blocks.get(size)
		if err != nil {
			for _, b := range mapped {
				l.m.blocks.put(b.buf)
			}
			return 0, fmt.Errorf("store: mapping %d bytes for records: %w", size, err)
		}
		mapped = append(mapped, memBlock{buf: buf})
	}
	l.blocks = append(l.blocks, mapped...)
	// Copy: nothing below fails.
	cur := len(l.blocks) - len(mapped) - 1 // block being filled (-1: none yet)
	first := l.first + uint64(l.n)
	for i := range recs {
		r := &recs[i]
		r.Position = first + uint64(i)
		n := len(r.PartitionKey) + len(r.Data)
		if cur < 0 || n > len(l.blocks[cur].buf)-l.blocks[cur].used {
			cur++
		}
		b := &l.blocks[cur]
		e := memEntry{arrival: r.ArrivalMilli, block: l.blockBase + uint32(cur), off: uint32(b.used), size: uint32(n), keyLen: uint16(len(r.PartitionKey))}
		copy(b.buf[b.used:], r.PartitionKey)
		copy(b.buf[b.used+len(r.PartitionKey):], r.Data)
		b.used += n
		last := len(l.chunks) - 1
		if last < 0 || len(l.chunks[last]) == memChunk {
			l.chunks = append(l.chunks, make([]memEntry, 0, memChunk))
			last++
		}
		l.chunks[last] = append(l.chunks[last], e)
	}
	l.n += len(recs)
	if !l.dirty && len(recs) > 0 {
		l.dirty = true
		l.m.markDirty(l)
	}
	return first, nil
}

// Read copies the records into one new buffer; the keys are strings over
// it, never changed after.
func (l *memLog) Read(from uint64, maxRecords, maxBytes int) ([]Record, error) {
	return l.ReadInto(nil, from, maxRecords, maxBytes)
}

var _ BufferedReader = (*memLog)(nil)

// ReadInto is Read into buf (nil: a new buffer).
func (l *memLog) ReadInto(buf *ReadBuffer, from uint64, maxRecords, maxBytes int) ([]Record, error) {
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
	end, size := i, 0
	for end < l.visible && end-i < maxRecords {
		n := int(l.at(end).size)
		if size+n > maxBytes && end > i {
			break
		}
		size += n
		end++
	}
	var all []byte
	var out []Record
	if buf == nil {
		// A Builder's buffer is not zeroed first (a GetRecords page is
		// megabytes); nothing writes to it after the copy.
		var sb strings.Builder
		sb.Grow(size)
		for j := i; j < end; j++ {
			sb.Write(l.bytes(l.at(j)))
		}
		if s := sb.String(); len(s) > 0 {
			all = unsafe.Slice(unsafe.StringData(s), len(s))
		}
		out = make([]Record, end-i)
	} else {
		if cap(buf.Bytes) < size {
			buf.Bytes = make([]byte, 0, size)
		}
		all = buf.Bytes[:0]
		for j := i; j < end; j++ {
			all = append(all, l.bytes(l.at(j))...)
		}
		if cap(buf.Records) < end-i {
			buf.Records = make([]Record, end-i)
		}
		out = buf.Records[:end-i]
	}
	if all == nil {
		all = []byte{} // empty records carry empty, not nil, data
	}
	p := 0
	for j := i; j < end; j++ {
		e := l.at(j)
		r := &out[j-i]
		r.Position = from + uint64(j-i)
		r.ArrivalMilli = e.arrival
		k, n := int(e.keyLen), int(e.size)
		r.PartitionKey = ""
		if k > 0 {
			r.PartitionKey = unsafe.String(&all[p], k)
		}
		r.Data = all[p+k : p+n : p+n]
		p += n
	}
	return out, nil
}

func (l *memLog) Bounds() (first, next uint64, lastArrival int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.visible > 0 {
		lastArrival = l.at(l.visible - 1).arrival
	}
	return l.first, l.first + uint64(l.visible), lastArrival
}

func (l *memLog) SeekTime(milli int64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.gone != nil {
		return 0, l.gone
	}
	i := sort.Search(l.visible, func(i int) bool { return l.at(i).arrival >= milli })
	return l.first + uint64(i), nil
}

func (l *memLog) TrimBefore(milli int64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		return 0, l.gone
	}
	i := sort.Search(l.visible, func(i int) bool { return l.at(i).arrival >= milli })
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
		l.freeBlocks()
	}
	return l.first, nil
}

// freeBlocks gives back the blocks before the first retained record's (every
// block when no record is retained but the one being filled). Caller holds
// l.mu for writing.
func (l *memLog) freeBlocks() {
	if len(l.blocks) == 0 {
		return
	}
	drop := uint32(len(l.blocks)) - 1 // with nothing retained, all but the last
	if l.n > 0 {
		drop = l.at(0).block - l.blockBase
	}
	if drop == 0 {
		return
	}
	for k := range drop {
		l.m.blocks.put(l.blocks[k].buf)
		l.blocks[k] = memBlock{}
	}
	l.blocks = l.blocks[drop:]
	l.blockBase += drop
}
