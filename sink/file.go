package sink

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// File appends each message's body to a file as one line and fsyncs it
// before Send returns, so an accepted message survives a crash. Bodies
// should be single-line JSON (a newline inside one would split it).
type File struct {
	mu   sync.RWMutex // guards: f (read-held by Send, so sends write and sync in parallel; Close takes it whole)
	f    *os.File
	path string
}

// OpenFile opens (creating it if needed) the JSON-lines file at path for
// appending.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sink: opening file: %w", err)
	}
	return &File{f: f, path: path}, nil
}

// Path is the file's path.
func (s *File) Path() string { return s.path }

// MaxSize is 0: no limit.
func (s *File) MaxSize() int { return 0 }

// Send appends m.Body and a newline, then syncs the file.
func (s *File) Send(_ context.Context, m Message) error {
	line := make([]byte, 0, len(m.Body)+1)
	line = append(append(line, m.Body...), '\n')
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.f == nil {
		return fmt.Errorf("sink: file %s is closed", s.path)
	}
	// One write call per line: O_APPEND keeps concurrent lines whole.
	if _, err := s.f.Write(line); err != nil {
		return fmt.Errorf("sink: writing file %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sink: syncing file %s: %w", s.path, err)
	}
	return nil
}

// Close closes the file; it is idempotent.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
