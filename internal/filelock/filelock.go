// Package filelock takes exclusive advisory locks on open files, so that two
// processes never own one resource (a store's directory, an npm install).
// The operating system drops a lock when its process dies. Unix systems use
// flock(2), Windows LockFileEx; on other systems locking does nothing.
package filelock

import (
	"errors"
	"os"
)

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("filelock: locked by another process")

// Lock waits until f is locked exclusively.
func Lock(f *os.File) error { return lock(f, true) }

// TryLock locks f exclusively, or fails at once with ErrLocked when another
// process holds it.
func TryLock(f *os.File) error { return lock(f, false) }

// Unlock releases the lock on f (closing f releases it too).
func Unlock(f *os.File) error { return unlock(f) }
