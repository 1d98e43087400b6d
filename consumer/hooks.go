package consumer

import (
	"time"

	"github.com/ksp-project/ksp/lease"
)

// Hook is any value implementing one or more of the Hook* interfaces below.
// The consumer checks which ones at run time, so new hooks never break
// existing implementations. Hooks are called synchronously from the
// consumer's goroutines, several at once: keep them fast and safe for
// concurrent use.
type Hook any

// HookShardLag is told how far a shard's reader is behind the tip of the
// shard after every read (Kinesis' MillisBehindLatest), and, while a
// breaker (WithBreaker) pauses the shard, the age of the oldest record
// waiting, about every second.
type HookShardLag interface {
	OnShardLag(shardID string, millisBehindLatest int64)
}

// HookRecordsProcessed is told about every batch the processor finished
// without error: user records, their data bytes and the time it took.
type HookRecordsProcessed interface {
	OnRecordsProcessed(shardID string, records, bytes int, took time.Duration)
}

// HookProcessError is told when a processor or handler fails a batch
// (error or panic); the batch is delivered again from the last checkpoint.
type HookProcessError interface {
	OnProcessError(shardID string, err error)
}

// HookCheckpoint is told about every checkpoint write, err nil on success.
type HookCheckpoint interface {
	OnCheckpoint(shardID string, cp lease.Checkpoint, err error)
}

// HookLeaseTaken is told when the worker takes a lease; stolen reports that
// it came from a live worker that handed it over to balance the load.
type HookLeaseTaken interface {
	OnLeaseTaken(shardID string, stolen bool)
}

// HookLeaseLost is told when the worker loses a lease it held (taken by
// another worker, or not renewed in time).
type HookLeaseLost interface {
	OnLeaseLost(shardID string)
}

// HookLeasesHeld is told how many leases the worker holds after each
// lease-taking round.
type HookLeasesHeld interface {
	OnLeasesHeld(n int)
}

// HookThrottle is told about every read of a shard that Kinesis throttled.
type HookThrottle interface {
	OnThrottle(shardID string)
}

// HookRecordsDropped is told about user records of aggregates that were
// dropped because their hash key lies outside the shard's range.
type HookRecordsDropped interface {
	OnRecordsDropped(shardID string, n int)
}

// hooks calls every hook that implements an interface.
type hooks []Hook

// isHook reports whether h implements at least one Hook interface, so a
// value passed to WithHooks by mistake is refused instead of ignored.
func isHook(h Hook) bool {
	switch h.(type) {
	case HookShardLag, HookRecordsProcessed, HookProcessError, HookCheckpoint, HookLeaseTaken, HookLeaseLost, HookLeasesHeld, HookThrottle, HookRecordsDropped, HookDeadLetter:
		return true
	}
	return false
}

func (hs hooks) shardLag(shardID string, ms int64) {
	for _, h := range hs {
		if h, ok := h.(HookShardLag); ok {
			h.OnShardLag(shardID, ms)
		}
	}
}

func (hs hooks) recordsProcessed(shardID string, n, bytes int, took time.Duration) {
	for _, h := range hs {
		if h, ok := h.(HookRecordsProcessed); ok {
			h.OnRecordsProcessed(shardID, n, bytes, took)
		}
	}
}

func (hs hooks) processError(shardID string, err error) {
	for _, h := range hs {
		if h, ok := h.(HookProcessError); ok {
			h.OnProcessError(shardID, err)
		}
	}
}

func (hs hooks) checkpoint(shardID string, cp lease.Checkpoint, err error) {
	for _, h := range hs {
		if h, ok := h.(HookCheckpoint); ok {
			h.OnCheckpoint(shardID, cp, err)
		}
	}
}

func (hs hooks) leaseTaken(shardID string, stolen bool) {
	for _, h := range hs {
		if h, ok := h.(HookLeaseTaken); ok {
			h.OnLeaseTaken(shardID, stolen)
		}
	}
}

func (hs hooks) leaseLost(shardID string) {
	for _, h := range hs {
		if h, ok := h.(HookLeaseLost); ok {
			h.OnLeaseLost(shardID)
		}
	}
}

func (hs hooks) leasesHeld(n int) {
	for _, h := range hs {
		if h, ok := h.(HookLeasesHeld); ok {
			h.OnLeasesHeld(n)
		}
	}
}

func (hs hooks) throttle(shardID string) {
	for _, h := range hs {
		if h, ok := h.(HookThrottle); ok {
			h.OnThrottle(shardID)
		}
	}
}

func (hs hooks) recordsDropped(shardID string, n int) {
	for _, h := range hs {
		if h, ok := h.(HookRecordsDropped); ok {
			h.OnRecordsDropped(shardID, n)
		}
	}
}
