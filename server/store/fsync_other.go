//go:build !linux

package store

import "os"

// datasync flushes a segment's data and size to stable storage.
func datasync(f *os.File) error { return f.Sync() }
