//go:build !unix

package store

// mapBlock returns n bytes from the Go heap (no anonymous mappings here).
func mapBlock(n int) ([]byte, error) { return make([]byte, n), nil }

// unmapBlock leaves the block to the garbage collector.
func unmapBlock([]byte) {}
