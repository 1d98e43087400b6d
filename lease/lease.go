package lease

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
)

// Lease is one row of a KCL lease table. Each field is named after the KCL
// attribute it holds (in parentheses below).
type Lease struct {
	// LeaseKey (leaseKey) identifies the lease: a shard id, or
	// account:stream:creationEpoch:shardId in multi-stream mode.
	LeaseKey string
	// LeaseOwner (leaseOwner) is the worker id that owns the lease; empty
	// when nobody does.
	LeaseOwner string
	// LeaseCounter (leaseCounter) is the heartbeat and fencing token: every
	// renewal, take, eviction and checkpoint adds one.
	LeaseCounter int64
	// OwnerSwitchesSinceCheckpoint (ownerSwitchesSinceCheckpoint) counts
	// owner changes since the last checkpoint.
	OwnerSwitchesSinceCheckpoint int64
	// Checkpoint (checkpoint, checkpointSubSequenceNumber) is the last
	// position processed; a sentinel such as TrimHorizon before any record.
	Checkpoint Checkpoint
	// PendingCheckpoint (pendingCheckpoint,
	// pendingCheckpointSubSequenceNumber) is the position of a prepared,
	// not yet committed checkpoint; zero when none.
	PendingCheckpoint Checkpoint
	// PendingCheckpointState (pendingCheckpointState) is application state
	// stored with the prepared checkpoint; nil when none.
	PendingCheckpointState []byte
	// ParentShardIDs (parentShardId, a string set) are the shards this
	// shard was split or merged from. Stores return sets sorted.
	ParentShardIDs []string
	// ChildShardIDs (childShardIds, a string set) are the shards created
	// when this one closed.
	ChildShardIDs []string
	// StartingHashKey and EndingHashKey (startingHashKey, endingHashKey) are
	// the shard's hash key range as decimal strings; empty when unknown.
	StartingHashKey string
	EndingHashKey   string
	// ThroughputKBps (throughputKBps, KCL 3.x) is the moving average of the
	// shard's throughput; 0 means absent.
	ThroughputKBps float64
	// CheckpointOwner (checkpointOwner, KCL 3.x) is set during a graceful
	// hand-off to the worker that must checkpoint before LeaseOwner takes
	// over; empty otherwise.
	CheckpointOwner string
}

// Holder returns the worker that currently holds the lease and may renew,
// checkpoint and evict it: CheckpointOwner during a hand-off, else
// LeaseOwner. Empty means nobody holds it.
func (l Lease) Holder() string {
	if l.CheckpointOwner != "" {
		return l.CheckpointOwner
	}
	return l.LeaseOwner
}

// HandOffRequested reports whether a graceful hand-off to LeaseOwner is under
// way, that is whether the holder has been asked to checkpoint and let go.
func (l Lease) HandOffRequested() bool { return l.CheckpointOwner != "" }

// ShardID returns the shard id part of the lease key, which is the whole key
// in single-stream mode.
func (l Lease) ShardID() string {
	if i := strings.LastIndexByte(l.LeaseKey, ':'); i >= 0 {
		return l.LeaseKey[i+1:]
	}
	return l.LeaseKey
}

// Clone returns a deep copy of l.
func (l Lease) Clone() Lease {
	l.PendingCheckpointState = bytes.Clone(l.PendingCheckpointState)
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	l.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	return l
}

// Normalize puts l in the form every store returns: string sets sorted and
// without duplicates, empty sets and empty state as nil, and no
// sub-sequence number without a sequence number.
func (l Lease) Normalize() Lease {
	l = l.Clone()
	l.ParentShardIDs = NormalizeSet(l.ParentShardIDs)
	l.ChildShardIDs = NormalizeSet(l.ChildShardIDs)
	if len(l.PendingCheckpointState) == 0 {
		l.PendingCheckpointState = nil
	}
	if l.Checkpoint.SequenceNumber == "" {
		l.Checkpoint = Checkpoint{}
	}
	if l.PendingCheckpoint.SequenceNumber == "" {
		l.PendingCheckpoint = Checkpoint{}
	}
	return l
}

// NormalizeSet sorts a string set and drops duplicates and empty strings
// (which a DynamoDB string set cannot hold). It returns nil for an empty set.
func NormalizeSet(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// Checkpoint is a position in a shard: a sequence number, or one of the
// sentinels, and the sub-sequence number of a record inside an aggregated
// (KPL) record. It is the KCL's ExtendedSequenceNumber.
type Checkpoint struct {
	SequenceNumber    string
	SubSequenceNumber int64
}

// Sentinel sequence numbers, spelled as the KCL stores them.
const (
	SentinelTrimHorizon = "TRIM_HORIZON"
	SentinelLatest      = "LATEST"
	SentinelShardEnd    = "SHARD_END"
	SentinelAtTimestamp = "AT_TIMESTAMP"
)

// Sentinel checkpoints.
var (
	// TrimHorizon starts at the oldest record of the shard.
	TrimHorizon = Checkpoint{SequenceNumber: SentinelTrimHorizon}
	// Latest starts after the newest record of the shard.
	Latest = Checkpoint{SequenceNumber: SentinelLatest}
	// ShardEnd marks a closed shard whose records have all been processed;
	// its children may then start.
	ShardEnd = Checkpoint{SequenceNumber: SentinelShardEnd}
	// AtTimestamp starts at the configured initial timestamp.
	AtTimestamp = Checkpoint{SequenceNumber: SentinelAtTimestamp}
)

// IsZero reports whether c holds no position at all.
func (c Checkpoint) IsZero() bool { return c.SequenceNumber == "" && c.SubSequenceNumber == 0 }

// IsShardEnd reports whether c is the SHARD_END sentinel.
func (c Checkpoint) IsShardEnd() bool { return c.SequenceNumber == SentinelShardEnd }

// IsTrimHorizon reports whether c is the TRIM_HORIZON sentinel.
func (c Checkpoint) IsTrimHorizon() bool { return c.SequenceNumber == SentinelTrimHorizon }

// IsLatest reports whether c is the LATEST sentinel.
func (c Checkpoint) IsLatest() bool { return c.SequenceNumber == SentinelLatest }

// IsAtTimestamp reports whether c is the AT_TIMESTAMP sentinel.
func (c Checkpoint) IsAtTimestamp() bool { return c.SequenceNumber == SentinelAtTimestamp }

// IsSentinel reports whether c is one of the four sentinels rather than a
// sequence number.
func (c Checkpoint) IsSentinel() bool {
	switch c.SequenceNumber {
	case SentinelTrimHorizon, SentinelLatest, SentinelShardEnd, SentinelAtTimestamp:
		return true
	}
	return false
}

// String returns the sequence number, followed by "/" and the sub-sequence
// number when that is not zero.
func (c Checkpoint) String() string {
	if c.SubSequenceNumber == 0 {
		return c.SequenceNumber
	}
	return c.SequenceNumber + "/" + strconv.FormatInt(c.SubSequenceNumber, 10)
}

// Compare orders checkpoints: AT_TIMESTAMP, TRIM_HORIZON and LATEST (in that
// order) come before every sequence number, and SHARD_END after every one.
// Sequence numbers compare as decimal integers, then by sub-sequence number.
// A sequence number that is not a decimal integer compares as a string after
// the decimal ones. It returns -1, 0 or +1.
func (c Checkpoint) Compare(o Checkpoint) int {
	ra, rb := c.rank(), o.rank()
	if ra != rb {
		if ra < rb {
			return -1
		}
		return 1
	}
	if ra == rankSequence {
		if r := compareDecimal(c.SequenceNumber, o.SequenceNumber); r != 0 {
			return r
		}
	} else if ra == rankOther {
		if r := strings.Compare(c.SequenceNumber, o.SequenceNumber); r != 0 {
			return r
		}
	}
	switch {
	case c.SubSequenceNumber < o.SubSequenceNumber:
		return -1
	case c.SubSequenceNumber > o.SubSequenceNumber:
		return 1
	}
	return 0
}

const (
	rankAtTimestamp = iota
	rankTrimHorizon
	rankLatest
	rankSequence
	rankOther
	rankShardEnd
)

func (c Checkpoint) rank() int {
	switch c.SequenceNumber {
	case SentinelAtTimestamp:
		return rankAtTimestamp
	case SentinelTrimHorizon:
		return rankTrimHorizon
	case SentinelLatest:
		return rankLatest
	case SentinelShardEnd:
		return rankShardEnd
	}
	if isDecimal(c.SequenceNumber) {
		return rankSequence
	}
	return rankOther
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareDecimal compares two unsigned decimal strings without allocating.
func compareDecimal(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
