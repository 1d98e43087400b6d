//go:build unix && !linux

package store

// adviseHugePages does nothing where transparent huge pages do not exist.
func adviseHugePages([]byte) {}
