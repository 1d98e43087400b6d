package storetest

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ksp-project/ksp/server/store"
)

// Op names a file-system operation FaultFS can fail.
type Op string

const (
	OpCreate  Op = "create"  // OpenFile with O_CREATE
	OpOpen    Op = "open"    // OpenFile without O_CREATE
	OpWrite   Op = "write"   // File.Write
	OpSync    Op = "sync"    // File.Datasync
	OpSyncDir Op = "syncdir" // FS.SyncDir
	OpRename  Op = "rename"  // FS.Rename (matched on the source path)
	OpMkdir   Op = "mkdir"   // FS.Mkdir and MkdirAll
	OpRemove  Op = "remove"  // FS.Remove and RemoveAll
)

// FaultFS is a store.FS that fails chosen operations on chosen paths, for
// tests of what the store and the server do on a full disk (syscall.ENOSPC),
// an exhausted open-file limit (syscall.EMFILE) or an I/O error
// (syscall.EIO). A failed write writes nothing. With Panic set a matching
// operation panics instead (to test that no lock stays held).
type FaultFS struct {
	FS store.FS // the file system underneath (store.OS{} when nil)

	// SyncDelay, when set, lengthens every Datasync (to widen the windows
	// in which syncs of one file could overlap).
	SyncDelay time.Duration
	// BeforeSync, when set, is called at the start of every Datasync with
	// the file's path (a test may block in it to hold a sync under way).
	BeforeSync func(path string)

	mu         sync.Mutex // guards: rules, syncing, maxSyncing
	rules      []*Rule
	syncing    map[string]int // Datasyncs under way per path
	maxSyncing int            // the most Datasyncs of one path under way at once
}

// MaxSameFileSyncs is the most Datasyncs of one file that were under way at
// once.
func (f *FaultFS) MaxSameFileSyncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxSyncing
}

func (f *FaultFS) syncStarts(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncing == nil {
		f.syncing = make(map[string]int)
	}
	f.syncing[name]++
	f.maxSyncing = max(f.maxSyncing, f.syncing[name])
}

func (f *FaultFS) syncEnds(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncing[name]--
}

// Rule is one injected fault.
type Rule struct {
	Op    Op
	Path  string // substring of the path; "" matches every path
	Err   error
	Panic bool
	After int // let this many matching operations through first
	Times int // fail this many times, then stop; 0: until removed
	Hits  int // how many operations it failed
	seen  int
}

// Inject adds a rule and returns it (read Hits under no lock only after the
// operations are done).
func (f *FaultFS) Inject(r Rule) *Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
	return &r
}

// Clear removes every rule.
func (f *FaultFS) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Hits returns how many operations the rules failed so far.
func (f *FaultFS) Hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.rules {
		n += r.Hits
	}
	return n
}

func (f *FaultFS) fault(op Op, path string) error {
	f.mu.Lock()
	var hit *Rule
	for _, r := range f.rules {
		if r.Op != op || !strings.Contains(path, r.Path) || (r.Times > 0 && r.Hits >= r.Times) {
			continue
		}
		if r.seen++; r.seen <= r.After {
			continue
		}
		r.Hits++
		hit = r
		break
	}
	f.mu.Unlock()
	if hit == nil {
		return nil
	}
	if hit.Panic {
		panic("storetest.FaultFS: injected panic at " + string(op) + " " + path)
	}
	return &os.PathError{Op: string(op), Path: path, Err: hit.Err}
}

func (f *FaultFS) base() store.FS {
	if f.FS == nil {
		return store.OS{}
	}
	return f.FS
}

var _ store.FS = (*FaultFS)(nil)

func (f *FaultFS) OpenFile(name string, flag int, perm fs.FileMode) (store.File, error) {
	op := OpOpen
	if flag&os.O_CREATE != 0 {
		op = OpCreate
	}
	if err := f.fault(op, name); err != nil {
		return nil, err
	}
	file, err := f.base().OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *FaultFS) Mkdir(name string, perm fs.FileMode) error {
	if err := f.fault(OpMkdir, name); err != nil {
		return err
	}
	return f.base().Mkdir(name, perm)
}

func (f *FaultFS) MkdirAll(name string, perm fs.FileMode) error {
	if err := f.fault(OpMkdir, name); err != nil {
		return err
	}
	return f.base().MkdirAll(name, perm)
}

func (f *FaultFS) Rename(from, to string) error {
	if err := f.fault(OpRename, from); err != nil {
		return err
	}
	return f.base().Rename(from, to)
}

func (f *FaultFS) Remove(name string) error {
	if err := f.fault(OpRemove, name); err != nil {
		return err
	}
	return f.base().Remove(name)
}

func (f *FaultFS) RemoveAll(name string) error {
	if err := f.fault(OpRemove, name); err != nil {
		return err
	}
	return f.base().RemoveAll(name)
}

func (f *FaultFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.base().ReadDir(name) }
func (f *FaultFS) Stat(name string) (fs.FileInfo, error)      { return f.base().Stat(name) }

func (f *FaultFS) SyncDir(name string) error {
	if err := f.fault(OpSyncDir, name); err != nil {
		return err
	}
	return f.base().SyncDir(name)
}

type faultFile struct {
	store.File
	fs *FaultFS
}

func (f *faultFile) Write(b []byte) (int, error) {
	if err := f.fs.fault(OpWrite, f.Name()); err != nil {
		return 0, err
	}
	return f.File.Write(b)
}

func (f *faultFile) Datasync() error {
	f.fs.syncStarts(f.Name())
	defer f.fs.syncEnds(f.Name())
	if f.fs.BeforeSync != nil {
		f.fs.BeforeSync(f.Name())
	}
	if f.fs.SyncDelay > 0 {
		time.Sleep(f.fs.SyncDelay)
	}
	if err := f.fs.fault(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Datasync()
}

// LogBuffer collects log output (a *slog.Logger's, through Logger) for
// tests to look at; safe for concurrent writers.
type LogBuffer struct {
	mu  sync.Mutex // guards: buf
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a text logger at debug level writing to b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
