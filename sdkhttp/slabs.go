package sdkhttp

import (
	"context"
	"sync"
)

// SlabPool keeps the memory GetRecords answers' data are decoded into, for
// a reader that knows when it is done with an answer's data: each answer's
// slabs are lent to a Slabs, and come back to the pool when the reader
// releases it, so a long-running reader decodes into the same memory
// instead of fresh megabytes per answer (zeroed by the allocator, and at
// first use faulted in by the kernel). Safe for concurrent use.
type SlabPool struct {
	mu   sync.Mutex // guards free
	free [][]byte   // each of cap slabSize
	max  int        // slabs kept at most
}

// NewSlabPool returns a pool that keeps at most maxBytes of free slabs
// (those lent out are not counted); the rest go to the garbage collector.
func NewSlabPool(maxBytes int) *SlabPool {
	return &SlabPool{max: maxBytes / slabSize}
}

// Slabs returns an empty set of slabs to decode one answer into; nil for a
// nil pool (the answer's data get slabs of their own).
func (p *SlabPool) Slabs() *Slabs {
	if p == nil {
		return nil
	}
	return &Slabs{pool: p}
}

// Slabs are the slabs one GetRecords answer's data were decoded into, lent
// by a SlabPool: give them to the call with WithSlabs, and Release them
// once nothing reads the answer's records' Data any more.
type Slabs struct {
	pool *SlabPool
	mu   sync.Mutex // guards held
	held [][]byte
}

type slabsKey struct{}

// WithSlabs returns a context for a GetRecords call made with FastCodecs:
// the answer's data are decoded into slabs lent to s, instead of slabs of
// its own. Without FastCodecs, or for an answer the SDK decodes, s stays
// empty.
func WithSlabs(ctx context.Context, s *Slabs) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, slabsKey{}, s)
}

func slabsFrom(ctx context.Context) *Slabs {
	s, _ := ctx.Value(slabsKey{}).(*Slabs)
	return s // may be a nil *Slabs: slabs of its own
}

// take lends a slab of slabSize bytes (length 0); what it held before is
// overwritten by the decoder.
func (s *Slabs) take() []byte {
	p := s.pool
	p.mu.Lock()
	var b []byte
	if n := len(p.free); n > 0 {
		b, p.free[n-1] = p.free[n-1], nil
		p.free = p.free[:n-1]
	}
	p.mu.Unlock()
	if b == nil {
		b = make([]byte, 0, slabSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, b)
	return b[:0]
}

// Release gives the slabs back to the pool: the Data of the records decoded
// into them may be overwritten by any later answer, so nothing may read
// them after Release. s may be used for another answer afterwards.
func (s *Slabs) Release() {
	if s == nil {
		return
	}
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	p := s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range held {
		if len(p.free) >= p.max {
			return
		}
		p.free = append(p.free, b)
	}
}
