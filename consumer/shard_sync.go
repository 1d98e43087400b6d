package consumer

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/lease"
)

// syncShards lists the stream's shards and creates leases for shards that
// need one, then deletes the leases of finished parents whose children all
// have leases. Every worker runs it; both steps are idempotent.
//
// Which shards get a lease: a shard whose parent has a lease starts at
// TRIM_HORIZON (its parent's records come first, then all of its own); a
// shard with no leased parent starts at the initial position, except that
// with LATEST only open shards get one (closed history is skipped). A shard
// with a leased descendant never gets one: its records were processed
// before its lease was cleaned up.
func (w *worker) syncShards(ctx context.Context) {
	opCtx, cancel := context.WithTimeout(ctx, 2*w.opTimeout())
	defer cancel()
	shards, err := listShards(opCtx, w.cfg.kinesis, w.cfg.stream)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("shard sync: listing shards failed", "err", err)
		}
		return
	}
	leases, err := w.cfg.store.ListLeases(opCtx)
	if errors.Is(err, lease.ErrCorruptLease) {
		w.log.Warn("some lease items are corrupt and were left out", "err", err)
		err = nil
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("shard sync: listing leases failed", "err", err)
		}
		return
	}
	byID := make(map[string]types.Shard, len(shards))
	children := map[string][]string{}
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		byID[id] = sh
		for _, p := range parentsOf(sh) {
			children[p] = append(children[p], id)
		}
	}
	leased := map[string]bool{}
	for _, l := range leases {
		leased[l.ShardID()] = true
	}

	descendantLeased := map[string]bool{}
	var hasLeasedDescendant func(id string, depth int) bool
	hasLeasedDescendant = func(id string, depth int) bool {
		if v, ok := descendantLeased[id]; ok || depth > len(shards) {
			return v
		}
		v := false
		for _, c := range children[id] {
			if leased[c] || hasLeasedDescendant(c, depth+1) {
				v = true
				break
			}
		}
		descendantLeased[id] = v
		return v
	}

	// Parents first, so a child sees the lease its parent just got.
	visited := map[string]bool{}
	var visit func(id string, depth int)
	visit = func(id string, depth int) {
		sh, ok := byID[id]
		if !ok || visited[id] || depth > len(shards) {
			return
		}
		visited[id] = true
		for _, p := range parentsOf(sh) {
			visit(p, depth+1)
		}
		if leased[id] || hasLeasedDescendant(id, 0) {
			return
		}
		var parents []string
		parentLeased := false
		for _, p := range parentsOf(sh) {
			if _, ok := byID[p]; ok {
				parents = append(parents, p)
			}
			parentLeased = parentLeased || leased[p]
		}
		cp := w.cfg.initial.cp
		switch {
		case parentLeased:
			cp = lease.TrimHorizon
		case cp.IsLatest() && sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil:
			return // closed history before LATEST
		}
		l := lease.Lease{LeaseKey: id, Checkpoint: cp, ParentShardIDs: parents}
		if sh.HashKeyRange != nil {
			l.StartingHashKey = aws.ToString(sh.HashKeyRange.StartingHashKey)
			l.EndingHashKey = aws.ToString(sh.HashKeyRange.EndingHashKey)
		}
		created, err := w.cfg.store.CreateLeaseIfNotExists(opCtx, l)
		if err != nil {
			w.log.Warn("shard sync: creating lease failed", "shard_id", id, "err", err)
			return
		}
		leased[id] = true
		if created {
			w.log.Info("lease created", "shard_id", id, "checkpoint", cp.String(), "parents", parents)
		}
	}
	for _, sh := range shards {
		visit(aws.ToString(sh.ShardId), 0)
	}

	for _, l := range leases {
		if !l.Checkpoint.IsShardEnd() {
			continue
		}
		kids := append(append([]string(nil), l.ChildShardIDs...), children[l.ShardID()]...)
		if len(kids) == 0 {
			continue // children not known yet
		}
		all := true
		for _, c := range kids {
			all = all && leased[c]
		}
		if !all {
			continue
		}
		if err := w.cfg.store.DeleteLease(opCtx, l.LeaseKey); err != nil {
			w.log.Warn("shard sync: deleting finished parent lease failed", "shard_id", l.ShardID(), "err", err)
			continue
		}
		w.log.Info("finished parent lease deleted", "shard_id", l.ShardID())
	}
}

func parentsOf(sh types.Shard) []string {
	var out []string
	if p := aws.ToString(sh.ParentShardId); p != "" {
		out = append(out, p)
	}
	if p := aws.ToString(sh.AdjacentParentShardId); p != "" {
		out = append(out, p)
	}
	return out
}
