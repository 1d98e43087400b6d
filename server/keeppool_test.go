package server

import (
	"runtime"
	"testing"
)

// A keepPool hands back what it was given, across collections, keeps no
// more than its max, and makes new values when empty.
func TestKeepPoolKeepsAcrossCollections(t *testing.T) {
	made := 0
	p := newKeepPool(2, func() *int { made++; return new(int) })
	a, b, c := p.get(), p.get(), p.get()
	if made != 3 {
		t.Fatalf("made %d values for three gets from an empty pool", made)
	}
	p.put(a)
	p.put(b)
	p.put(c) // over max: dropped
	runtime.GC()
	runtime.GC()
	got := map[*int]bool{p.get(): true, p.get(): true}
	if !got[a] || !got[b] || made != 3 {
		t.Fatalf("after two collections the pool gave %v (made %d); want the two kept values %p %p", got, made, a, b)
	}
	if p.get(); made != 4 {
		t.Fatalf("an empty pool made %d values in all; want 4", made)
	}
}
