// Package store defines where the ksp server keeps its data: per-shard
// append-only logs of records plus one metadata document describing the
// streams. The server owns all Kinesis semantics (sequence numbers,
// iterators, limits, resharding); a Store only keeps bytes in order.
//
// Guarantees every implementation gives:
//   - Positions in a shard log start at 0 and grow by one per record, with no
//     gaps, for the life of the log (trimming removes a prefix, never renumbers).
//   - Append assigns positions in call order. Records become visible to Read
//     only once they are durable under the store's policy: after Commit returns
//     for them (Commit may also be triggered by another caller: group commit).
//   - A record is returned by Read exactly as appended: same position, arrival
//     time, partition key and data.
//   - SaveMeta is atomic: after a crash LoadMeta returns either the old or the
//     new document, never a mix; a failed SaveMeta leaves the old one.
//   - A position once returned by Append for a record that Commit made
//     visible is never returned again for another record, also across
//     recovery.
//
// A store may also offer, and the server uses when present:
// OpenLog(LogID) (Log, error), which fails instead of creating a missing log;
// DropLog(LogID) error, which removes one log (a shard whose creation was
// rolled back); and Health() error, why the store cannot take writes now.
// Disk has all three; see Disk for what it does on a full disk, a failed
// fsync, a torn write and corruption.
package store

import (
	"errors"
	"io"
)

// Record is one record of a shard log.
type Record struct {
	Position     uint64 // set by Append; 0-based, dense
	ArrivalMilli int64  // arrival time, epoch milliseconds; non-decreasing within a log
	PartitionKey string
	Data         []byte
}

// Size is the record's payload size as Kinesis counts it (data + partition key).
func (r *Record) Size() int { return len(r.Data) + len(r.PartitionKey) }

// LogID names one shard log: the stream's identity (its name and creation
// time, so a re-created stream never sees the old one's records) and the
// shard's index. Stream names may contain '.', so implementations must not use
// them as path elements unescaped.
type LogID struct {
	Stream   string
	Created  int64 // stream creation, epoch milliseconds
	ShardIdx int
}

// Store keeps shard logs and the metadata document.
type Store interface {
	// Log opens (creating when missing) the log of one shard. Opening the same
	// LogID twice returns the same Log.
	Log(id LogID) (Log, error)
	// DropStream deletes every log of a stream (all shards of that Stream+Created).
	DropStream(stream string, created int64) error
	// Commit makes durable everything appended before the call, per the store's
	// fsync policy, and publishes it to readers. Concurrent callers may share
	// one sync (group commit).
	Commit() error
	// SaveMeta atomically replaces the metadata document.
	SaveMeta(doc []byte) error
	// LoadMeta returns the last saved metadata document, or nil when none.
	LoadMeta() ([]byte, error)
	// Close releases files. It is idempotent.
	io.Closer
}

// Log is one shard's append-only record log. Its methods are safe for
// concurrent use; the server serialises appends to one log itself.
type Log interface {
	// Append adds records at the end, setting each record's Position, and
	// returns the position of the first. The records are neither durable nor
	// visible to Read until Store.Commit.
	Append(recs []Record) (first uint64, err error)
	// Read returns up to maxRecords visible records starting at position from,
	// stopping before maxBytes of Size() would be exceeded (but always returning
	// at least one record when one is visible). A from below the trim horizon
	// starts at the horizon. The returned slices must not be modified.
	Read(from uint64, maxRecords, maxBytes int) ([]Record, error)
	// Bounds returns the first retained position, the next position to be made
	// visible (first == next means the log holds nothing readable), and the
	// arrival time of the last visible record (0 when empty).
	Bounds() (first, next uint64, lastArrival int64)
	// SeekTime returns the position of the first visible record whose arrival is
	// at or after milli, or next when there is none.
	SeekTime(milli int64) (uint64, error)
	// TrimBefore discards records that arrived before milli (whole segments at a
	// time is fine: a store may keep some older records) and returns the new first position.
	TrimBefore(milli int64) (uint64, error)
}

// ReadBuffer is memory a BufferedReader reads into instead of allocating.
// Records read into it point into it: they are valid until the buffer is
// used again.
type ReadBuffer struct {
	Records []Record
	Bytes   []byte

	chunk []byte // the disk store's file reads
	spans []int  // the disk store's record offsets in Bytes
}

// BufferedReader is implemented by logs that can Read into a caller's
// ReadBuffer (the memory and disk stores'), so that a server reading megabytes per
// call reuses the same memory instead of making garbage of it.
type BufferedReader interface {
	// ReadInto is Read, with the records and their bytes in buf (grown when
	// too small).
	ReadInto(buf *ReadBuffer, from uint64, maxRecords, maxBytes int) ([]Record, error)
}

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("store: closed")
