package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// FS is the file system under the disk store: every file and directory
// operation the store makes goes through it, one call per file operation
// (never per record), so a test can inject the failures a real disk gives
// (ENOSPC, EMFILE, ENFILE, EIO) at chosen operations and paths. DiskOptions.FS
// nil is the operating system's.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Mkdir(name string, perm fs.FileMode) error
	MkdirAll(name string, perm fs.FileMode) error
	Rename(from, to string) error
	Remove(name string) error
	RemoveAll(name string) error
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the entries created, renamed or removed in a directory durable.
	SyncDir(name string) error
}

// File is an open file of an FS.
type File interface {
	io.Writer
	io.ReaderAt
	io.Seeker
	io.Closer
	Name() string
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	// Datasync flushes the file's data and the metadata needed to read it
	// back (its size), as fdatasync does.
	Datasync() error
}

// OS is the operating system's file system.
type OS struct{}

var _ FS = OS{}

func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OS) Mkdir(name string, perm fs.FileMode) error    { return os.Mkdir(name, perm) }
func (OS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (OS) Rename(from, to string) error                 { return os.Rename(from, to) }
func (OS) Remove(name string) error                     { return os.Remove(name) }
func (OS) RemoveAll(name string) error                  { return os.RemoveAll(name) }
func (OS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (OS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (OS) SyncDir(name string) error                    { return syncDir(name) }

// osFile is an *os.File with Datasync.
type osFile struct{ *os.File }

func (f osFile) Datasync() error { return datasync(f.File) }

// syncDir fsyncs a directory so that entries created, renamed or removed in it
// survive a crash.
func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// IsNoSpace reports whether err is a write refused for want of space
// (ENOSPC, EDQUOT): the store keeps the bytes and retries.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// IsOutOfFiles reports whether err is an open refused for want of file
// handles (EMFILE: the process's limit, ENFILE: the system's).
func IsOutOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// isTransient: failures that end by themselves (space or handles freed);
// the store retries instead of failing.
func isTransient(err error) bool { return IsNoSpace(err) || IsOutOfFiles(err) }
