package server

import (
	"time"

	"github.com/ksp-project/ksp/server/store"

	"github.com/ksp-project/ksp/kds"
)

// Resharding closes parent shards and opens children. A closed parent keeps
// its records (readable until retention ends); its EndingSequenceNumber is
// that of its last record, and GetRecords at its end answers
// NextShardIterator null plus ChildShards. Children name their parents in
// ParentShardId / AdjacentParentShardId, so readers finish parents first.

type splitShardInput struct {
	streamRef
	ShardToSplit       *string `json:"ShardToSplit"`
	NewStartingHashKey *string `json:"NewStartingHashKey"`
}

func (r *splitShardInput) validate(v *validator) {
	r.streamRef.validate(v)
	v.shardID("shardToSplit", r.ShardToSplit, true)
	if v.notNull("newStartingHashKey", r.NewStartingHashKey != nil) {
		v.hashKey("newStartingHashKey", r.NewStartingHashKey)
	}
}

func splitShard(s *Server, c *call) (any, error) {
	req, err := decodeRequest[splitShardInput](c)
	if err != nil {
		return nil, err
	}
	return s.reshard(req.streamRef, func(st *stream, streams []*stream) error {
		parent, err := s.openShard(st, *req.ShardToSplit)
		if err != nil {
			return err
		}
		at, err := kds.ParseHashKey(*req.NewStartingHashKey)
		if err != nil || at.Cmp(parent.rng.Start.Add(kds.HashKey{Lo: 1})) < 0 || at.Cmp(parent.rng.End) > 0 {
			return kds.Errorf(kds.ErrCodeInvalidArgument,
				"NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
				*req.NewStartingHashKey, parent.id, st.name, s.opts.Account, parent.startKey, parent.endKey)
		}
		if err := s.checkShardLimit(st, streams, 1); err != nil {
			return err
		}
		_, _, err = s.split(st, parent, at, c.now)
		return err
	})
}

type mergeShardsInput struct {
	streamRef
	ShardToMerge         *string `json:"ShardToMerge"`
	AdjacentShardToMerge *string `json:"AdjacentShardToMerge"`
}

func (r *mergeShardsInput) validate(v *validator) {
	r.streamRef.validate(v)
	v.shardID("shardToMerge", r.ShardToMerge, true)
	v.shardID("adjacentShardToMerge", r.AdjacentShardToMerge, true)
}

func mergeShards(s *Server, c *call) (any, error) {
	req, err := decodeRequest[mergeShardsInput](c)
	if err != nil {
		return nil, err
	}
	return s.reshard(req.streamRef, func(st *stream, streams []*stream) error {
		a, err := s.openShard(st, *req.ShardToMerge)
		if err != nil {
			return err
		}
		b, err := s.openShard(st, *req.AdjacentShardToMerge)
		if err != nil {
			return err
		}
		if !adjacent(a, b) {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", a.id, b.id, st.name, s.opts.Account)
		}
		_, err = s.merge(st, a, b, c.now)
		return err
	})
}

// adjacent reports whether a and b touch. The comparison first keeps the
// shard ending at 2^128-1 from wrapping around to touch the one starting at 0.
func adjacent(a, b *shard) bool {
	one := kds.HashKey{Lo: 1}
	touches := func(x, y *shard) bool { return x.rng.End.Cmp(y.rng.Start) < 0 && x.rng.End.Add(one) == y.rng.Start }
	return touches(a, b) || touches(b, a)
}

type updateShardCountInput struct {
	streamRef
	TargetShardCount *integer `json:"TargetShardCount"`
	ScalingType      *string  `json:"ScalingType"`
}

func (r *updateShardCountInput) validate(v *validator) {
	r.streamRef.validate(v)
	if v.notNull("targetShardCount", r.TargetShardCount != nil) {
		v.intRange("targetShardCount", int64(*r.TargetShardCount), 1, 100000)
	}
	if v.notNull("scalingType", r.ScalingType != nil) {
		v.enum("scalingType", *r.ScalingType, "UNIFORM_SCALING")
	}
}

type updateShardCountOutput struct {
	StreamName        string `json:"StreamName"`
	StreamARN         string `json:"StreamARN"`
	CurrentShardCount int    `json:"CurrentShardCount"`
	TargetShardCount  int    `json:"TargetShardCount"`
}

// updateShardCount scales uniformly the way Kinesis does: a series of splits
// and merges that ends with target shards of even width, each child with at
// most two parents (intermediate shards are created and closed on the way).
func updateShardCount(s *Server, c *call) (any, error) {
	req, err := decodeRequest[updateShardCountInput](c)
	if err != nil {
		return nil, err
	}
	target := int(*req.TargetShardCount)
	var out updateShardCountOutput
	_, err = s.reshard(req.streamRef, func(st *stream, streams []*stream) error {
		current := len(st.open)
		if target > 2*current || 2*target < current {
			return kds.Errorf(kds.ErrCodeInvalidArgument,
				"UpdateShardCount of stream %s under account %s from %d to %d shards: the target must be between half and double the current open shard count.",
				st.name, s.opts.Account, current, target)
		}
		if target == current {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Stream %s under account %s already has %d open shards.", st.name, s.opts.Account, current)
		}
		if err := s.checkShardLimit(st, streams, target-current); err != nil {
			return err
		}
		if err := s.scaleUniform(st, target, c.now); err != nil {
			return err
		}
		out = updateShardCountOutput{StreamName: st.name, StreamARN: st.arn, CurrentShardCount: current, TargetShardCount: target}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reshard changes the shard layout of an ACTIVE stream: prepare, persist,
// publish. It holds the stream's lock throughout (puts and reads of this
// stream wait; other streams' never do): first it commits what was appended,
// so a closed parent ends at its last committed record; then change closes
// parents and opens children (new logs nobody can reach yet); the document
// with the new layout is saved; and releasing the lock publishes it. If any
// step fails, or panics, the layout is rolled back completely, the
// children's logs are removed, and the error is retryable.
func (s *Server) reshard(ref streamRef, change func(st *stream, streams []*stream) error) (any, error) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	st, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	streams := s.streamList()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.status != statusActive {
		return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s not ACTIVE, instead in state %s", st.name, s.opts.Account, st.status)
	}
	if err := s.store.Commit(); err != nil {
		return nil, s.storeFailure("committing before a reshard", err)
	}
	undo := st.layoutUndo()
	done := false
	defer func() {
		if !done {
			s.rollbackLayout(st, undo)
		}
	}()
	if err := change(st, streams); err != nil {
		return nil, s.storeFailure("resharding", err)
	}
	st.reindexOpen()
	set := st.streamSettings
	if s.opts.CreateDelay > 0 {
		set.status = statusUpdating
	}
	if err := s.persist(streams, map[*stream]streamMeta{st: st.metaLocked(set)}); err != nil {
		return nil, err
	}
	done = true
	st.streamSettings = set
	if s.opts.CreateDelay > 0 {
		s.after(s.opts.CreateDelay, func() { s.setStatus(st, statusUpdating, statusActive) })
	}
	return empty{}, nil
}

// layoutUndo is what rollbackLayout needs to restore a stream's shards.
type layoutUndo struct {
	shards int // shard count before
	ends   []shardEnd
}

type shardEnd struct {
	closed   bool
	closedMs int64
	endSeq   string
	endPos   uint64
}

// layoutUndo records the shard layout. Caller holds st.mu.
func (st *stream) layoutUndo() layoutUndo {
	u := layoutUndo{shards: len(st.shards), ends: make([]shardEnd, len(st.shards))}
	for i, sh := range st.shards {
		sh.appendMu.Lock()
		u.ends[i] = shardEnd{sh.closed, sh.closedMs, sh.endSeq, sh.endPos}
		sh.appendMu.Unlock()
	}
	return u
}

// rollbackLayout restores the layout u recorded and removes the logs of
// shards added since. Caller holds st.mu.
func (s *Server) rollbackLayout(st *stream, u layoutUndo) {
	for i, e := range u.ends {
		sh := st.shards[i]
		sh.appendMu.Lock()
		sh.closed, sh.closedMs, sh.endSeq, sh.endPos = e.closed, e.closedMs, e.endSeq, e.endPos
		sh.appendMu.Unlock()
	}
	dropper, canDrop := s.store.(interface{ DropLog(store.LogID) error })
	for _, sh := range st.shards[u.shards:] {
		if !canDrop {
			break
		}
		if err := dropper.DropLog(store.LogID{Stream: st.name, Created: st.created, ShardIdx: sh.idx}); err != nil {
			s.log.Error("removing the log of a shard whose creation was rolled back", "stream", st.name, "shard_id", sh.id, "err", err)
		}
	}
	clear(st.shards[u.shards:])
	st.shards = st.shards[:u.shards]
	st.reindexOpen()
}

// openShard finds an open shard by id. Caller holds st.mu.
func (s *Server) openShard(st *stream, id string) (*shard, error) {
	sh := st.shardByID(id)
	if sh == nil {
		return nil, kds.Errorf(kds.ErrCodeResourceNotFound, "Could not find shard %s in stream %s under account %s.", id, st.name, s.opts.Account)
	}
	sh.appendMu.Lock()
	closed := sh.closed
	sh.appendMu.Unlock()
	if closed {
		return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", id, st.name, s.opts.Account)
	}
	return sh, nil
}

// checkShardLimit refuses a change to st that adds more open shards than the
// quota allows. Caller holds metaMu and st.mu; streams is the list taken
// before st.mu (s.mu comes before any stream's lock).
func (s *Server) checkShardLimit(st *stream, streams []*stream, added int) error {
	open := len(st.open)
	for _, other := range streams {
		if other != st {
			open += other.openShardCount()
		}
	}
	if added > 0 && open+added > s.opts.ShardLimit {
		return kds.Errorf(kds.ErrCodeLimitExceeded,
			"This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d.",
			s.opts.Account, s.opts.Region, open, s.opts.ShardLimit, added)
	}
	return nil
}

// closeShard ends a shard at everything appended so far, which reshard
// committed first. Caller holds st.mu (write), so no append is in flight on
// this stream.
func (st *stream) closeShard(sh *shard, now time.Time) {
	sh.appendMu.Lock()
	defer sh.appendMu.Unlock()
	sh.closed, sh.closedMs, sh.endPos = true, now.UnixMilli(), sh.nextPos
	sh.endSeq = st.endSeq(sh, sh.nextPos)
	sh.changed.notify() // subscriptions send ChildShards
}

// split closes parent and opens [start, at-1] and [at, end]. Caller holds st.mu.
func (s *Server) split(st *stream, parent *shard, at kds.HashKey, now time.Time) (lo, hi *shard, err error) {
	st.closeShard(parent, now)
	if lo, err = s.addShard(st, kds.HashKeyRange{Start: parent.rng.Start, End: at.Sub(kds.HashKey{Lo: 1})}, parent.id, "", now); err != nil {
		return nil, nil, err
	}
	if hi, err = s.addShard(st, kds.HashKeyRange{Start: at, End: parent.rng.End}, parent.id, "", now); err != nil {
		return nil, nil, err
	}
	return lo, hi, nil
}

// merge closes a and b and opens their union. Caller holds st.mu.
func (s *Server) merge(st *stream, a, b *shard, now time.Time) (*shard, error) {
	st.closeShard(a, now)
	st.closeShard(b, now)
	rng := kds.HashKeyRange{Start: a.rng.Start, End: b.rng.End}
	if b.rng.Start.Cmp(a.rng.Start) < 0 {
		rng = kds.HashKeyRange{Start: b.rng.Start, End: a.rng.End}
	}
	return s.addShard(st, rng, a.id, b.id, now)
}

// scaleUniform reshapes the open shards into target even ranges: first split
// open shards at every target boundary inside them, then merge neighbours
// that fall in the same target range. Caller holds st.mu.
func (s *Server) scaleUniform(st *stream, target int, now time.Time) error {
	ranges := kds.SplitHashKeySpace(target)
	pieces := append([]*shard(nil), st.open...) // sorted by start
	for _, r := range ranges[1:] {
		for i, p := range pieces {
			if p.rng.Start.Cmp(r.Start) < 0 && r.Start.Cmp(p.rng.End) <= 0 {
				lo, hi, err := s.split(st, p, r.Start, now)
				if err != nil {
					return err
				}
				pieces = append(pieces[:i], append([]*shard{lo, hi}, pieces[i+1:]...)...)
				break
			}
		}
	}
	for _, r := range ranges {
		var acc *shard
		for _, p := range pieces {
			if p.rng.Start.Cmp(r.Start) < 0 || p.rng.End.Cmp(r.End) > 0 {
				continue
			}
			if acc == nil {
				acc = p
				continue
			}
			var err error
			if acc, err = s.merge(st, acc, p, now); err != nil {
				return err
			}
		}
	}
	return nil
}
