package store

import (
	"fmt"
	"os"

	"github.com/ksp-project/ksp/internal/filelock"
)

// lockDir takes an exclusive advisory lock on dir/LOCK (flock on Unix,
// LockFileEx on Windows) so that two processes never write one store. The
// system drops it when the process dies.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := filelock.TryLock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
