package consumer

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/lease"
)

// syncShards lists the stream's shards and creates leases for shards that
// need one, then deletes the leases of finished parents whose children have
// all begun (cleanUpFinished). Every worker runs it; both steps are
// idempotent.
//
// Which shards get a lease: a shard whose parent has a lease starts at
// TRIM_HORIZON (its parent's records come first, then all of its own); a
// shard with no leased parent starts at the initial position, except that
// with LATEST only open shards get one (closed history is skipped). A shard
// with a leased descendant never gets one: its records were processed
// before its lease was cleaned up. In multi-stream mode each stream is
// synced so, its lease keys carrying its prefix.
func (w *worker) syncShards(ctx context.Context) {
	if w.cfg.tracker != nil {
		w.trackStreams(ctx)
	}
	opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
	leases, err := w.cfg.store.ListLeases(opCtx)
	cancel()
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
	// One pass sorts the leases by stream, so a sync costs streams +
	// leases, not streams × leases.
	byStream := make(map[string][]lease.Lease, len(w.streams))
	for _, l := range leases {
		if f, ok := w.streamOf(l.LeaseKey); ok {
			byStream[f.prefix] = append(byStream[f.prefix], l)
		}
	}
	for _, f := range w.streams {
		w.syncStream(ctx, f, byStream[f.prefix])
	}
	if w.cfg.formerWait > 0 && w.cfg.stream == "" {
		w.deleteFormerStreams(ctx, leases)
	}
}

// syncStream is syncShards for one stream, given its leases.
func (w *worker) syncStream(ctx context.Context, f followed, leases []lease.Lease) {
	opCtx, cancel := context.WithTimeout(ctx, 2*w.opTimeout())
	defer cancel()
	log := w.log
	if f.prefix != "" {
		log = log.With("stream", f.name)
	}
	shards, err := listShards(opCtx, w.cfg.kinesis, f.name)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("shard sync: listing shards failed", "err", err)
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
		cp := w.cfg.initialFor(f.name).cp
		switch {
		case parentLeased:
			cp = lease.TrimHorizon
		case cp.IsLatest() && sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil:
			return // closed history before LATEST
		}
		l := lease.Lease{LeaseKey: f.prefix + id, Checkpoint: cp, ParentShardIDs: parents}
		if sh.HashKeyRange != nil {
			l.StartingHashKey = aws.ToString(sh.HashKeyRange.StartingHashKey)
			l.EndingHashKey = aws.ToString(sh.HashKeyRange.EndingHashKey)
		}
		created, err := w.cfg.store.CreateLeaseIfNotExists(opCtx, l)
		if err != nil {
			log.Warn("shard sync: creating lease failed", "shard_id", id, "err", err)
			return
		}
		leased[id] = true
		if created {
			log.Info("lease created", "shard_id", id, "checkpoint", cp.String(), "parents", parents)
		}
	}
	for _, sh := range shards {
		visit(aws.ToString(sh.ShardId), 0)
	}

	w.cleanUpFinished(opCtx, leases, children)
}

// cleanUpFinished deletes the leases of finished parents under the KCL's
// rule (leases/LeaseCleanupManager.java cleanupLeaseForCompletedShard): a
// lease at SHARD_END goes once every child has a lease that has left
// TRIM_HORIZON (and AT_TIMESTAMP), that is once processing of every child
// has begun, and the lease's own parents' leases are gone. Until then the
// parent stays, so a worker (ksp or Java) joining mid-resharding finds the
// whole lineage. Children missing from the lease's childShardIds are
// recorded on it first, as the KCL does.
func (w *worker) cleanUpFinished(ctx context.Context, leases []lease.Lease, children map[string][]string) {
	byShard := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		byShard[l.ShardID()] = l
	}
	for _, l := range leases {
		if !l.Checkpoint.IsShardEnd() {
			continue
		}
		kids := l.ChildShardIDs
		if len(kids) == 0 {
			kids = children[l.ShardID()]
			if len(kids) == 0 {
				continue // children not known yet
			}
			if _, err := w.cfg.store.UpdateLeaseMeta(ctx, l.LeaseKey, lease.MetaUpdate{ChildShardIDs: kids}); err != nil {
				w.log.Warn("shard sync: recording child shards failed", "shard_id", l.ShardID(), "err", err)
				continue
			}
		}
		if !childrenStarted(byShard, kids) || anyLeased(byShard, l.ParentShardIDs) {
			continue
		}
		if err := w.cfg.store.DeleteLease(ctx, l.LeaseKey); err != nil {
			w.log.Warn("shard sync: deleting finished parent lease failed", "shard_id", l.ShardID(), "err", err)
			continue
		}
		w.log.Info("finished parent lease deleted", "shard_id", l.ShardID())
	}
}

// childrenStarted reports whether every child has a lease whose checkpoint
// has left the start of the shard.
func childrenStarted(byShard map[string]lease.Lease, kids []string) bool {
	for _, c := range kids {
		cl, ok := byShard[c]
		if !ok || cl.Checkpoint.IsTrimHorizon() || cl.Checkpoint.IsAtTimestamp() {
			return false
		}
	}
	return true
}

func anyLeased(byShard map[string]lease.Lease, ids []string) bool {
	for _, id := range ids {
		if _, ok := byShard[id]; ok {
			return true
		}
	}
	return false
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
