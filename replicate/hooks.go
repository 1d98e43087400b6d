package replicate

import "time"

// Hook is any value implementing one or more of the Hook* interfaces. Hooks
// are called from the replicator's goroutines, several at once: keep them
// fast and safe for concurrent use.
type Hook any

// HookReplicationLag is told, for every record the destination
// acknowledged, the time from its arrival at the source to the
// acknowledgement.
type HookReplicationLag interface {
	OnReplicationLag(sourceShardID string, lag time.Duration)
}

// HookBatchReplicated is told about every batch of a source shard that was
// forwarded and acknowledged: records sent, records the Transform dropped,
// and the time from the batch's delivery to its last acknowledgement. The
// consumer checkpoints the batch next.
type HookBatchReplicated interface {
	OnBatchReplicated(sourceShardID string, sent, dropped int, took time.Duration)
}

// HookDeliveryError is told when a batch could not be forwarded whole (the
// Transform failed, or the destination refused a record); the records
// before the failed one are checkpointed and the rest sent again after a
// back-off.
type HookDeliveryError interface {
	OnDeliveryError(sourceShardID string, err error)
}

type hooks []Hook

func isHook(h Hook) bool {
	switch h.(type) {
	case HookReplicationLag, HookBatchReplicated, HookDeliveryError:
		return true
	}
	return false
}

func (hs hooks) lag(shardID string, d time.Duration) {
	for _, h := range hs {
		if h, ok := h.(HookReplicationLag); ok {
			h.OnReplicationLag(shardID, d)
		}
	}
}

func (hs hooks) batch(shardID string, sent, dropped int, took time.Duration) {
	for _, h := range hs {
		if h, ok := h.(HookBatchReplicated); ok {
			h.OnBatchReplicated(shardID, sent, dropped, took)
		}
	}
}

func (hs hooks) deliveryError(shardID string, err error) {
	for _, h := range hs {
		if h, ok := h.(HookDeliveryError); ok {
			h.OnDeliveryError(shardID, err)
		}
	}
}
