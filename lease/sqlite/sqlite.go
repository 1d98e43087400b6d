// Package sqlite is a lease.Store kept in an embedded SQLite file (pure Go,
// modernc.org/sqlite), the local default. Several processes on one host may
// open the same file at once: it runs in WAL mode, every conditional write is
// one IMMEDIATE transaction that reads the lease, compares the counter and
// owner, and writes, so writers from all processes are serialized by SQLite's
// file lock, and a writer that finds the file locked waits up to the busy
// timeout rather than failing.
//
// Its semantics are those of every lease.Store (see package lease). One file
// may hold several lease tables, one per application name. A committed write
// survives a crash of the process (synchronous=FULL); the file must live on
// a local file system, as SQLite's WAL mode needs shared memory.
//
// Columns carry the KCL attribute names (leaseKey, leaseOwner,
// leaseCounter, ...) so the file reads like the DynamoDB table.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/internal/rules"
)

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS lease_tables (
	name TEXT NOT NULL PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
	leaseTable TEXT NOT NULL,
	leaseKey TEXT NOT NULL,
	leaseOwner TEXT NOT NULL DEFAULT '',
	leaseCounter INTEGER NOT NULL DEFAULT 0,
	ownerSwitchesSinceCheckpoint INTEGER NOT NULL DEFAULT 0,
	checkpoint TEXT NOT NULL DEFAULT '',
	checkpointSubSequenceNumber INTEGER NOT NULL DEFAULT 0,
	pendingCheckpoint TEXT NOT NULL DEFAULT '',
	pendingCheckpointSubSequenceNumber INTEGER NOT NULL DEFAULT 0,
	pendingCheckpointState BLOB,
	parentShardId TEXT NOT NULL DEFAULT '[]',
	childShardIds TEXT NOT NULL DEFAULT '[]',
	startingHashKey TEXT NOT NULL DEFAULT '',
	endingHashKey TEXT NOT NULL DEFAULT '',
	throughputKBps REAL NOT NULL DEFAULT 0,
	checkpointOwner TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (leaseTable, leaseKey)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leaseOwnerToLeaseKey ON leases (leaseTable, leaseOwner, leaseKey);
`

const columns = `leaseKey, leaseOwner, leaseCounter, ownerSwitchesSinceCheckpoint,
	checkpoint, checkpointSubSequenceNumber, pendingCheckpoint, pendingCheckpointSubSequenceNumber,
	pendingCheckpointState, parentShardId, childShardIds, startingHashKey, endingHashKey,
	throughputKBps, checkpointOwner`

// Option configures Open.
type Option interface{ apply(*config) }

type config struct {
	busyTimeout time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithBusyTimeout sets how long a write waits for another process's write
// to finish before failing. Default 10s.
func WithBusyTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.busyTimeout = d })
}

// Store is a lease table in a SQLite file.
type Store struct {
	rules.Writes // the conditional writes, over mutate

	db    *sql.DB
	table string
	// writeTurn (capacity 1) serializes this process's writes, so they
	// queue here instead of polling SQLite's lock; other processes are
	// serialized by the lock. Unlike a mutex, waiting for it ends with the
	// caller's context, so a write queued behind slow ones (a renewal with
	// its deadline) returns at its deadline instead of after the queue.
	writeTurn chan struct{}
	closed    atomic.Bool
}

var _ lease.Store = (*Store)(nil)

// Open opens (creating when missing) the SQLite file at path and returns the
// lease table named table in it. The table itself is created by
// CreateTableIfNotExists, as in DynamoDB.
func Open(ctx context.Context, path, table string, opts ...Option) (*Store, error) {
	if path == "" || table == "" {
		return nil, fmt.Errorf("%w: sqlite: path %q and table %q must both be set", lease.ErrInvalidArgument, path, table)
	}
	cfg := config{busyTimeout: 10 * time.Second}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.busyTimeout < 0 {
		return nil, fmt.Errorf("%w: sqlite: busy timeout %s is negative", lease.ErrInvalidArgument, cfg.busyTimeout)
	}
	dsn := "file:" + path + "?_txlock=immediate&_journal_mode=WAL&_synchronous=FULL&_busy_timeout=" +
		strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{db: db, table: table, writeTurn: make(chan struct{}, 1)}
	s.Writes = rules.Writes{Mutate: s.mutate}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this ksp understands (%d)", v, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) wrap(op, key string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if key == "" {
		return fmt.Errorf("sqlite: %s in table %q: %w", op, s.table, err)
	}
	return fmt.Errorf("sqlite: %s %q in table %q: %w", op, key, s.table, err)
}

// lockWrite waits for this process's turn to write, or for ctx to end.
func (s *Store) lockWrite(ctx context.Context) error {
	select {
	case s.writeTurn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlockWrite() { <-s.writeTurn }

func (s *Store) open() error {
	if s.closed.Load() {
		return lease.ErrClosed
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) tableExists(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT count(*) FROM lease_tables WHERE name = ?", s.table).Scan(&n)
	return n > 0, err
}

func (s *Store) requireTable(ctx context.Context, q querier) error {
	ok, err := s.tableExists(ctx, q)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %q", lease.ErrTableNotFound, s.table)
	}
	return nil
}

// CreateTableIfNotExists implements lease.Store.
func (s *Store) CreateTableIfNotExists(ctx context.Context) (bool, error) {
	if err := s.open(); err != nil {
		return false, err
	}
	if err := s.lockWrite(ctx); err != nil {
		return false, err
	}
	defer s.unlockWrite()
	res, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO lease_tables (name) VALUES (?)", s.table)
	if err != nil {
		return false, s.wrap("create table", "", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("create table", "", err)
	}
	return n > 0, nil
}

// TableExists implements lease.Store.
func (s *Store) TableExists(ctx context.Context) (bool, error) {
	if err := s.open(); err != nil {
		return false, err
	}
	ok, err := s.tableExists(ctx, s.db)
	if err != nil {
		return false, s.wrap("describe table", "", err)
	}
	return ok, nil
}

// WaitUntilTableExists implements lease.Store.
func (s *Store) WaitUntilTableExists(ctx context.Context) error {
	return rules.WaitUntilTableExists(ctx, s.TableExists, 100*time.Millisecond)
}

// IsTableEmpty implements lease.Store.
func (s *Store) IsTableEmpty(ctx context.Context) (bool, error) {
	if err := s.open(); err != nil {
		return false, err
	}
	if err := s.requireTable(ctx, s.db); err != nil {
		return false, s.wrapTable("scan", "", err)
	}
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM leases WHERE leaseTable = ? LIMIT 1)", s.table).Scan(&n)
	if err != nil {
		return false, s.wrap("scan", "", err)
	}
	return n == 0, nil
}

// wrapTable leaves ErrTableNotFound as it is and wraps other errors.
func (s *Store) wrapTable(op, key string, err error) error {
	if errors.Is(err, lease.ErrTableNotFound) {
		return err
	}
	return s.wrap(op, key, err)
}

// CreateLeaseIfNotExists implements lease.Store.
func (s *Store) CreateLeaseIfNotExists(ctx context.Context, l lease.Lease) (bool, error) {
	if err := rules.CheckLease("create", l); err != nil {
		return false, err
	}
	if err := s.open(); err != nil {
		return false, err
	}
	l = l.Normalize()
	if err := s.lockWrite(ctx); err != nil {
		return false, err
	}
	defer s.unlockWrite()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, s.wrap("create", l.LeaseKey, err)
	}
	defer tx.Rollback()
	if err := s.requireTable(ctx, tx); err != nil {
		return false, s.wrapTable("create", l.LeaseKey, err)
	}
	args, err := s.values(l)
	if err != nil {
		return false, s.wrap("create", l.LeaseKey, err)
	}
	res, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO leases (leaseTable, "+columns+
		") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args...)
	if err != nil {
		return false, s.wrap("create", l.LeaseKey, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("create", l.LeaseKey, err)
	}
	if err := tx.Commit(); err != nil {
		return false, s.wrap("create", l.LeaseKey, err)
	}
	return n > 0, nil
}

// values returns the table name and l's columns in the order of columns.
func (s *Store) values(l lease.Lease) ([]any, error) {
	parents, err := json.Marshal(nonNil(l.ParentShardIDs))
	if err != nil {
		return nil, err
	}
	children, err := json.Marshal(nonNil(l.ChildShardIDs))
	if err != nil {
		return nil, err
	}
	var state any
	if len(l.PendingCheckpointState) > 0 {
		state = l.PendingCheckpointState
	}
	return []any{s.table, l.LeaseKey, l.LeaseOwner, l.LeaseCounter, l.OwnerSwitchesSinceCheckpoint,
		l.Checkpoint.SequenceNumber, l.Checkpoint.SubSequenceNumber,
		l.PendingCheckpoint.SequenceNumber, l.PendingCheckpoint.SubSequenceNumber,
		state, string(parents), string(children), l.StartingHashKey, l.EndingHashKey,
		l.ThroughputKBps, l.CheckpointOwner}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type scanner interface{ Scan(dest ...any) error }

func scanLease(r scanner) (lease.Lease, error) {
	var (
		l                 lease.Lease
		state             []byte
		parents, children string
	)
	err := r.Scan(&l.LeaseKey, &l.LeaseOwner, &l.LeaseCounter, &l.OwnerSwitchesSinceCheckpoint,
		&l.Checkpoint.SequenceNumber, &l.Checkpoint.SubSequenceNumber,
		&l.PendingCheckpoint.SequenceNumber, &l.PendingCheckpoint.SubSequenceNumber,
		&state, &parents, &children, &l.StartingHashKey, &l.EndingHashKey,
		&l.ThroughputKBps, &l.CheckpointOwner)
	if err != nil {
		return lease.Lease{}, err
	}
	if len(state) > 0 {
		l.PendingCheckpointState = state
	}
	if err := json.Unmarshal([]byte(parents), &l.ParentShardIDs); err != nil {
		return lease.Lease{}, fmt.Errorf("parentShardId %q: %w", parents, err)
	}
	if err := json.Unmarshal([]byte(children), &l.ChildShardIDs); err != nil {
		return lease.Lease{}, fmt.Errorf("childShardIds %q: %w", children, err)
	}
	return l.Normalize(), nil
}

const selectLease = "SELECT " + columns + " FROM leases WHERE leaseTable = ? AND leaseKey = ?"

// GetLease implements lease.Store.
func (s *Store) GetLease(ctx context.Context, key string) (lease.Lease, error) {
	if err := rules.CheckKey("get", key); err != nil {
		return lease.Lease{}, err
	}
	if err := s.open(); err != nil {
		return lease.Lease{}, err
	}
	l, err := scanLease(s.db.QueryRowContext(ctx, selectLease, s.table, key))
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.requireTable(ctx, s.db); err != nil {
			return lease.Lease{}, s.wrapTable("get", key, err)
		}
		return lease.Lease{}, fmt.Errorf("%w: %q in table %q", lease.ErrLeaseNotFound, key, s.table)
	}
	if err != nil {
		return lease.Lease{}, s.wrap("get", key, err)
	}
	return l, nil
}

// ListLeases implements lease.Store.
func (s *Store) ListLeases(ctx context.Context) ([]lease.Lease, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	if err := s.requireTable(ctx, s.db); err != nil {
		return nil, s.wrapTable("list", "", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+columns+" FROM leases WHERE leaseTable = ? ORDER BY leaseKey", s.table)
	if err != nil {
		return nil, s.wrap("list", "", err)
	}
	defer rows.Close()
	out := []lease.Lease{}
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, s.wrap("list", "", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list", "", err)
	}
	return out, nil
}

// listForWorker is answered from the index leaseOwnerToLeaseKey alone.
const listForWorker = "SELECT leaseKey FROM leases WHERE leaseTable = ? AND leaseOwner = ? ORDER BY leaseKey"

// ListLeaseKeysForWorker implements lease.Store from the index
// leaseOwnerToLeaseKey, the file's counterpart of the KCL's
// LeaseOwnerToLeaseKeyIndex (an older file gains it when opened).
func (s *Store) ListLeaseKeysForWorker(ctx context.Context, worker string) ([]string, error) {
	if err := rules.CheckWorker(worker); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if err := s.requireTable(ctx, s.db); err != nil {
		return nil, s.wrapTable("list for worker", "", err)
	}
	rows, err := s.db.QueryContext(ctx, listForWorker, s.table, worker)
	if err != nil {
		return nil, s.wrap("list for worker", "", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, s.wrap("list for worker", "", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list for worker", "", err)
	}
	return out, nil
}

// mutate runs one conditional write: in one IMMEDIATE transaction it reads
// the lease, lets m check the condition and change it, and writes it back.
func (s *Store) mutate(ctx context.Context, op, key string, m rules.Mutation) (lease.Lease, error) {
	if err := rules.CheckKey(op, key); err != nil {
		return lease.Lease{}, err
	}
	if err := s.open(); err != nil {
		return lease.Lease{}, err
	}
	if err := s.lockWrite(ctx); err != nil {
		return lease.Lease{}, err
	}
	defer s.unlockWrite()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return lease.Lease{}, s.wrap(op, key, err)
	}
	defer tx.Rollback()
	cur, err := scanLease(tx.QueryRowContext(ctx, selectLease, s.table, key))
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.requireTable(ctx, tx); err != nil {
			return lease.Lease{}, s.wrapTable(op, key, err)
		}
		return lease.Lease{}, rules.NotFound(op, key)
	}
	if err != nil {
		return lease.Lease{}, s.wrap(op, key, err)
	}
	if err := m(&cur); err != nil {
		return lease.Lease{}, err
	}
	cur = cur.Normalize()
	args, err := s.values(cur)
	if err != nil {
		return lease.Lease{}, s.wrap(op, key, err)
	}
	// values starts with table and key; the update wants them last.
	args = append(args[2:], s.table, key)
	_, err = tx.ExecContext(ctx, `UPDATE leases SET leaseOwner = ?, leaseCounter = ?,
		ownerSwitchesSinceCheckpoint = ?, checkpoint = ?, checkpointSubSequenceNumber = ?,
		pendingCheckpoint = ?, pendingCheckpointSubSequenceNumber = ?, pendingCheckpointState = ?,
		parentShardId = ?, childShardIds = ?, startingHashKey = ?, endingHashKey = ?,
		throughputKBps = ?, checkpointOwner = ?
		WHERE leaseTable = ? AND leaseKey = ?`, args...)
	if err != nil {
		return lease.Lease{}, s.wrap(op, key, err)
	}
	if err := tx.Commit(); err != nil {
		return lease.Lease{}, s.wrap(op, key, err)
	}
	return cur, nil
}

// DeleteLease implements lease.Store.
func (s *Store) DeleteLease(ctx context.Context, key string) error {
	if err := rules.CheckKey("delete", key); err != nil {
		return err
	}
	if err := s.open(); err != nil {
		return err
	}
	if err := s.lockWrite(ctx); err != nil {
		return err
	}
	defer s.unlockWrite()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("delete", key, err)
	}
	defer tx.Rollback()
	if err := s.requireTable(ctx, tx); err != nil {
		return s.wrapTable("delete", key, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM leases WHERE leaseTable = ? AND leaseKey = ?", s.table, key); err != nil {
		return s.wrap("delete", key, err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap("delete", key, err)
	}
	return nil
}

// Close closes the file. It is safe to call more than once.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.db.Close()
}
