package server

import "testing"

// Body buffers come in class sizes that hold what was asked, and only class
// buffers go back to the pools.
func TestBodyBufferClasses(t *testing.T) {
	for _, n := range []int64{0, 1, bodyChunk, bodyChunk + 1, 75_000, 1 << 20, maxPooledBody} {
		b := getBodyBuffer(n)
		if len(b) != 0 || int64(cap(b)) < n || cap(b) != bodyChunk<<bodyClass(n) {
			t.Fatalf("getBodyBuffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		putBodyBuffer(b)
	}
	if b := getBodyBuffer(maxPooledBody + 1); cap(b) != maxPooledBody+1 {
		t.Fatalf("a body over the largest class got cap %d", cap(b))
	}
	foreign := make([]byte, 0, 5000)
	putBodyBuffer(foreign) // not a class size: dropped, never handed out
	for range 100 {
		if b := getBodyBuffer(5000); cap(b) != 2*bodyChunk {
			t.Fatalf("got a buffer of cap %d from class %d", cap(b), bodyClass(5000))
		}
	}
}
