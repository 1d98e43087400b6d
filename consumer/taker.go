package consumer

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// observation is the last state of a lease the taker saw, and when it first
// saw it by the local clock. A lease whose counter has not moved (nor its
// holder changed) for a failover time is expired: no clocks need to agree.
// A hand-off request changes the owner but neither the counter nor the
// holder, so it does not make a dead holder's lease look alive.
type observation struct {
	counter int64
	holder  string
	at      time.Time
}

// take runs one lease-taking round as the KCL's lease taker does: aim at
// ceil(active leases / workers) leases; take expired or unowned ones first,
// in random order; when there are none, ask the most loaded worker, if it
// holds more than its share, to hand up to maxSteal leases over.
//
// The workers are this one, those holding live leases, and those seen doing
// so within the last failover time: while the worker count settles (a
// rolling deploy: a worker released its leases and its successor is
// starting) nobody takes more than the fair share, so the successor finds
// its share free and nothing moves twice. A worker whose leases expired is
// dead, not leaving, and stops counting at once, so a crash still fails
// over within the failover time.
//
// Balancing is a graceful hand-off (lease.Store.HandOffLease, as a KCL 3.x
// leader reassigns leases; see handoff.go): the holder finishes its batch,
// checkpoints and lets go, and only then is the lease taken, so balancing
// replays nothing. A dead holder's lease expires; a live holder that never
// lets go loses it after the hand-off timeout.
//
// In a KCL 3.x fleet with a live leader (WithWorkerMetrics) the worker only
// takes the leases assigned to it: see kclfleet.go.
func (w *worker) take(ctx context.Context) {
	if w.followLeader(ctx) {
		w.discover(ctx)
		w.cfg.hooks.leasesHeld(len(w.held()))
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
	all, err := w.cfg.store.ListLeases(opCtx)
	cancel()
	if errors.Is(err, lease.ErrCorruptLease) {
		w.log.Warn("some lease items are corrupt and were left out", "err", err)
		err = nil
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("listing leases failed", "err", err)
		}
		return
	}
	// The scan already holds what discover would read through the owner
	// index, so the leases handed to this worker are taken from it: one
	// read of the table per round.
	w.takeOwned(ctx, all)
	now := time.Now()
	held := w.heldKeys()
	seen := make(map[string]bool, len(all))
	var available []lease.Lease
	counts := map[string]int{w.id: 0}
	byOwner := map[string][]lease.Lease{} // leases that may be asked for, by holder
	var overdue []lease.Lease             // handed over to us, but never let go
	liveNow, expiredHolders := map[string]bool{}, map[string]bool{}
	active := 0
	for _, l := range all {
		if !w.follows(l) {
			continue // another stream's, in a multi-stream table
		}
		seen[l.LeaseKey] = true
		o, ok := w.obs[l.LeaseKey]
		if !ok || o.counter != l.LeaseCounter || o.holder != l.Holder() {
			o = observation{counter: l.LeaseCounter, holder: l.Holder(), at: now}
			w.obs[l.LeaseKey] = o
		}
		if l.LeaseOwner != w.id {
			delete(w.incoming, l.LeaseKey)
		}
		if l.Checkpoint.IsShardEnd() {
			continue // finished: waits for clean-up
		}
		active++
		if held[l.LeaseKey] {
			counts[w.id]++
			continue
		}
		holder := l.Holder()
		expired := now.Sub(o.at) > w.cfg.failover
		if expired && holder != "" && holder != w.id {
			expiredHolders[holder] = true
		}
		if holder == "" || holder == w.id || expired {
			available = append(available, l)
			continue
		}
		w.live[holder], liveNow[holder] = now, true
		if l.HandOffRequested() {
			// On its way to LeaseOwner: it counts there, and cannot be
			// asked for again.
			w.live[l.LeaseOwner] = now
			counts[l.LeaseOwner]++
			if l.LeaseOwner == w.id && w.incomingOverdue(l, now) {
				overdue = append(overdue, l)
			}
			continue
		}
		counts[holder]++
		byOwner[holder] = append(byOwner[holder], l)
	}
	for k := range w.obs {
		if !seen[k] {
			delete(w.obs, k)
			delete(w.incoming, k)
		}
	}
	for id := range expiredHolders {
		if !liveNow[id] {
			delete(w.live, id) // dead, not leaving: its share is free now
		}
	}
	for id, at := range w.live {
		if now.Sub(at) > w.cfg.failover {
			delete(w.live, id)
		} else if _, ok := counts[id]; !ok {
			counts[id] = 0 // seen lately: still counts as a worker
		}
	}
	defer func() { w.cfg.hooks.leasesHeld(len(w.held())) }()
	for _, l := range overdue {
		w.log.Warn("hand-off timed out: taking the lease from its holder", "shard_id", l.ShardID(), "holder", l.Holder(), "timeout", w.cfg.handOffMax)
		w.takeLease(ctx, l)
	}

	target := (active + len(counts) - 1) / len(counts)
	if w.cfg.maxLeases > 0 && target > w.cfg.maxLeases {
		target = w.cfg.maxLeases
	}
	need := target - counts[w.id]
	if need <= 0 {
		return
	}
	if len(available) > 0 {
		rand.Shuffle(len(available), func(i, j int) { available[i], available[j] = available[j], available[i] })
		taken := 0
		for _, l := range available[:min(need, len(available))] {
			if w.takeLease(ctx, l) {
				taken++
			}
		}
		if taken > 0 {
			return
		}
		// Every take failed (another worker was faster, or the item cannot
		// be taken): balancing must not wait on it, so go on as if none
		// were available.
	}

	// Ask the most loaded worker (ties: the first by id, so workers agree).
	owners := make([]string, 0, len(counts))
	for o := range counts {
		if o != w.id {
			owners = append(owners, o)
		}
	}
	if len(owners) == 0 {
		return
	}
	slices.Sort(owners)
	most := owners[0]
	for _, o := range owners[1:] {
		if counts[o] > counts[most] {
			most = o
		}
	}
	over := counts[most] - target
	steal := min(need, over)
	if need > 1 && over == 0 {
		steal = 1 // both at target would leave us short: even out by one
	}
	steal = min(steal, w.cfg.maxSteal)
	if steal <= 0 {
		return
	}
	victims := byOwner[most]
	rand.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	for _, l := range victims[:min(steal, len(victims))] {
		w.requestHandOff(ctx, l)
	}
}

// takeLease takes l and starts its shard; it reports whether it did.
func (w *worker) takeLease(ctx context.Context, l lease.Lease) bool {
	opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
	nl, err := w.cfg.store.TakeLease(opCtx, l.LeaseKey, l.LeaseOwner, l.LeaseCounter, w.id)
	cancel()
	if err != nil {
		w.log.Debug("taking lease failed", "shard_id", l.ShardID(), "err", err)
		return false
	}
	_, stolen := w.incoming[l.LeaseKey]
	delete(w.incoming, l.LeaseKey)
	w.log.Info("lease taken", "shard_id", l.ShardID(), "from", l.Holder(), "handed_over", stolen)
	w.cfg.hooks.leaseTaken(nl.ShardID(), stolen)
	w.startShard(nl)
	return true
}

// requestHandOff asks l's holder to hand it over to this worker.
func (w *worker) requestHandOff(ctx context.Context, l lease.Lease) {
	opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
	_, err := w.cfg.store.HandOffLease(opCtx, l.LeaseKey, l.LeaseOwner, w.id)
	cancel()
	if err != nil {
		w.log.Debug("asking for a lease failed", "shard_id", l.ShardID(), "from", l.LeaseOwner, "err", err)
		return
	}
	w.incoming[l.LeaseKey] = time.Now()
	w.log.Info("lease hand-off requested", "shard_id", l.ShardID(), "from", l.LeaseOwner)
}

// giveBackIncoming, on shutdown, lets go of the leases this worker asked to
// be handed over and has not taken: one still being handed over goes back
// to its holder, one already let go is evicted, so neither waits a failover
// time for an owner that is leaving. The leases are given back concurrently
// (at most maxRenewals at once) while the shards stop; the returned wait
// waits for them.
func (w *worker) giveBackIncoming() (wait func()) {
	keys := make([]string, 0, len(w.incoming))
	for key := range w.incoming {
		keys = append(keys, key)
	}
	clear(w.incoming)
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxRenewals)
	wg.Go(func() {
		for _, key := range keys {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				w.giveBack(key)
			})
		}
	})
	return wg.Wait
}

// giveBack lets go of one lease asked for (giveBackIncoming).
func (w *worker) giveBack(key string) {
	ctx, cancel := context.WithTimeout(w.bg, w.opTimeout())
	defer cancel()
	l, err := w.cfg.store.GetLease(ctx, key)
	switch {
	case err != nil || l.LeaseOwner != w.id:
	case l.HandOffRequested():
		_, err = w.cfg.store.TakeLease(ctx, key, w.id, l.LeaseCounter, l.CheckpointOwner)
	default:
		_, err = w.cfg.store.EvictLease(ctx, key, w.id)
	}
	if err != nil {
		w.log.Debug("giving back a lease asked for failed; it will expire", "shard_id", lease.Lease{LeaseKey: key}.ShardID(), "err", err)
	}
}
