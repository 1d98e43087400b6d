// Package memory is an in-process lease.Store for tests and single-process
// programs. It keeps nothing across restarts and is shared only by the
// goroutines holding the same *Store.
//
// Its semantics are those of every lease.Store (see package lease); the
// lease table starts out missing, like a fresh DynamoDB account, until
// CreateTableIfNotExists.
package memory

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/internal/rules"
)

// Store is an in-memory lease table.
type Store struct {
	rules.Writes // the conditional writes, over mutate

	mu sync.Mutex // guards: table, leases, closed
	// table reports whether CreateTableIfNotExists has run.
	table  bool
	leases map[string]lease.Lease
	closed bool
}

var _ lease.Store = (*Store)(nil)

// New returns an empty store whose table does not exist yet.
func New() *Store {
	s := &Store{leases: make(map[string]lease.Lease)}
	s.Writes = rules.Writes{Mutate: s.mutate}
	return s
}

// NewWithTable returns an empty store whose table already exists.
func NewWithTable() *Store {
	s := New()
	s.table = true
	return s
}

func (s *Store) check() error {
	if s.closed {
		return lease.ErrClosed
	}
	if !s.table {
		return lease.ErrTableNotFound
	}
	return nil
}

// CreateTableIfNotExists implements lease.Store.
func (s *Store) CreateTableIfNotExists(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, lease.ErrClosed
	}
	created := !s.table
	s.table = true
	return created, nil
}

// TableExists implements lease.Store.
func (s *Store) TableExists(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, lease.ErrClosed
	}
	return s.table, nil
}

// WaitUntilTableExists implements lease.Store.
func (s *Store) WaitUntilTableExists(ctx context.Context) error {
	return rules.WaitUntilTableExists(ctx, s.TableExists, 10*time.Millisecond)
}

// IsTableEmpty implements lease.Store.
func (s *Store) IsTableEmpty(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return false, err
	}
	return len(s.leases) == 0, nil
}

// CreateLeaseIfNotExists implements lease.Store.
func (s *Store) CreateLeaseIfNotExists(ctx context.Context, l lease.Lease) (bool, error) {
	if err := rules.CheckLease("create", l); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return false, err
	}
	if _, ok := s.leases[l.LeaseKey]; ok {
		return false, nil
	}
	s.leases[l.LeaseKey] = l.Normalize()
	return true, nil
}

// GetLease implements lease.Store.
func (s *Store) GetLease(ctx context.Context, key string) (lease.Lease, error) {
	if err := rules.CheckKey("get", key); err != nil {
		return lease.Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return lease.Lease{}, err
	}
	l, ok := s.leases[key]
	if !ok {
		return lease.Lease{}, lease.ErrLeaseNotFound
	}
	return l.Clone(), nil
}

// ListLeases implements lease.Store.
func (s *Store) ListLeases(ctx context.Context) ([]lease.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	out := make([]lease.Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l.Clone())
	}
	slices.SortFunc(out, func(a, b lease.Lease) int { return strings.Compare(a.LeaseKey, b.LeaseKey) })
	return out, nil
}

// ListLeaseKeysForWorker implements lease.Store.
func (s *Store) ListLeaseKeysForWorker(ctx context.Context, worker string) ([]string, error) {
	if err := rules.CheckWorker(worker); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	out := []string{}
	for k, l := range s.leases {
		if l.LeaseOwner == worker {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *Store) mutate(ctx context.Context, op, key string, m rules.Mutation) (lease.Lease, error) {
	if err := rules.CheckKey(op, key); err != nil {
		return lease.Lease{}, err
	}
	if err := ctx.Err(); err != nil {
		return lease.Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return lease.Lease{}, err
	}
	cur, ok := s.leases[key]
	if !ok {
		return lease.Lease{}, rules.NotFound(op, key)
	}
	cur = cur.Clone()
	if err := m(&cur); err != nil {
		return lease.Lease{}, err
	}
	cur = cur.Normalize()
	s.leases[key] = cur
	return cur.Clone(), nil
}

// DeleteLease implements lease.Store.
func (s *Store) DeleteLease(ctx context.Context, key string) error {
	if err := rules.CheckKey("delete", key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	delete(s.leases, key)
	return nil
}

// Close implements lease.Store. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
