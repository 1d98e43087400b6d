package filelock_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ksp-project/ksp/internal/filelock"
)

// TestTryLockExcludes: a second open file of a locked file cannot be locked
// until the first is unlocked; Lock then succeeds at once.
func TestTryLockExcludes(t *testing.T) {
	switch runtime.GOOS {
	case "darwin", "dragonfly", "freebsd", "linux", "netbsd", "openbsd", "windows":
	default:
		t.Skip("no file locks on " + runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "LOCK")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	if err := filelock.TryLock(a); err != nil {
		t.Fatal(err)
	}
	if err := filelock.TryLock(b); !errors.Is(err, filelock.ErrLocked) {
		t.Fatalf("TryLock of a locked file = %v, want ErrLocked", err)
	}
	if err := filelock.Unlock(a); err != nil {
		t.Fatal(err)
	}
	if err := filelock.Lock(b); err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	if err := filelock.TryLock(a); !errors.Is(err, filelock.ErrLocked) {
		t.Fatalf("TryLock while the other holds it = %v, want ErrLocked", err)
	}
}
