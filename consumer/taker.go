package consumer

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// observation is the last state of a lease the taker saw, and when it first
// saw it by the local clock. A lease whose counter has not moved for a
// failover time is expired: no clocks need to agree.
type observation struct {
	counter int64
	owner   string
	at      time.Time
}

// take runs one lease-taking round as the KCL's lease taker does: aim at
// ceil(active leases / live workers) leases; take expired or unowned ones
// first, in random order; when there are none, steal up to maxSteal from the
// most loaded worker if it holds more than its share.
func (w *worker) take(ctx context.Context) {
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
	now := time.Now()
	held := map[string]bool{}
	for _, s := range w.held() {
		held[s.key] = true
	}
	seen := make(map[string]bool, len(all))
	var available []lease.Lease
	counts := map[string]int{w.id: 0}
	byOwner := map[string][]lease.Lease{}
	active := 0
	for _, l := range all {
		seen[l.LeaseKey] = true
		o, ok := w.obs[l.LeaseKey]
		if !ok || o.counter != l.LeaseCounter || o.owner != l.LeaseOwner {
			o = observation{counter: l.LeaseCounter, owner: l.LeaseOwner, at: now}
			w.obs[l.LeaseKey] = o
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
		if holder == "" || holder == w.id || now.Sub(o.at) > w.cfg.failover {
			available = append(available, l)
			continue
		}
		counts[holder]++
		byOwner[holder] = append(byOwner[holder], l)
	}
	for k := range w.obs {
		if !seen[k] {
			delete(w.obs, k)
		}
	}
	defer func() { w.cfg.hooks.leasesHeld(len(w.held())) }()

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
			if w.takeLease(ctx, l, false) {
				taken++
			}
		}
		if taken > 0 {
			return
		}
		// Every take failed (another worker was faster, or the item cannot
		// be taken): balancing must not wait on it, so steal as if none
		// were available.
	}

	// Steal from the most loaded worker (ties: the first by id, so
	// workers agree).
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
		w.takeLease(ctx, l, true)
	}
}

// takeLease takes l and starts its shard; it reports whether it did.
func (w *worker) takeLease(ctx context.Context, l lease.Lease, stolen bool) bool {
	opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
	nl, err := w.cfg.store.TakeLease(opCtx, l.LeaseKey, l.LeaseOwner, l.LeaseCounter, w.id)
	cancel()
	if err != nil {
		w.log.Debug("taking lease failed", "shard_id", l.ShardID(), "err", err)
		return false
	}
	w.log.Info("lease taken", "shard_id", l.ShardID(), "from", l.LeaseOwner, "stolen", stolen)
	w.cfg.hooks.leaseTaken(nl.ShardID(), stolen)
	w.startShard(nl)
	return true
}
