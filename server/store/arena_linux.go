package store

import "syscall"

// adviseHugePages asks for transparent huge pages (honoured when the system's
// setting is "madvise" or "always"); a refusal changes nothing but speed.
func adviseHugePages(b []byte) { _ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) }
