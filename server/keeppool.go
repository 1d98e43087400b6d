package server

import "sync"

// keepPool is a free list of at most max values that, unlike sync.Pool,
// keeps them across garbage collections. The buffers of GetRecords answers
// are megabytes: a busy server collects garbage often, and making them again
// (zeroed, often on fresh pages) after every collection costs more than
// holding a few. At most max values are kept; more are left to the collector.
type keepPool[T any] struct {
	mu   sync.Mutex // guards: free
	free []T
	max  int
	new  func() T
}

func newKeepPool[T any](max int, new func() T) *keepPool[T] {
	return &keepPool[T]{max: max, new: new}
}

func (p *keepPool[T]) get() T {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		v := p.free[n-1]
		var zero T
		p.free[n-1] = zero
		p.free = p.free[:n-1]
		return v
	}
	return p.new()
}

func (p *keepPool[T]) put(v T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < p.max {
		p.free = append(p.free, v)
	}
}
