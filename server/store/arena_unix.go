//go:build unix

package store

import "syscall"

// mapBlock returns n bytes of anonymous memory outside the Go heap: the
// collector neither scans it nor counts it toward its goal, so the records
// the memory store holds cost their size in RSS, not twice it. Pages are
// backed only when written; blocks of memBlockSize ask for huge pages.
func mapBlock(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err == nil && n >= memBlockSize {
		adviseHugePages(b)
	}
	return b, err
}

// unmapBlock returns a block of mapBlock to the system. Nothing may use it
// afterwards.
func unmapBlock(b []byte) { syscall.Munmap(b) }
