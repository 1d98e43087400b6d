//go:build !linux

package store

import "os"

// datasync flushes a segment's data and size to stable storage.
func datasync(f *os.File) error { return f.Sync() }

// lockDir opens dir/LOCK; other systems get no cross-process lock.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}
