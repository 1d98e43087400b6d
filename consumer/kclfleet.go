package consumer

import (
	"context"
	"time"

	"github.com/ksp-project/ksp/lease"
)

// A ksp worker in a KCL 3.x fleet (WithWorkerMetrics). A KCL 3.x fleet has
// a leader (the holder of the DynamoDB lock item "Leader") whose
// LeaseAssignmentManager assigns every lease: it gives expired and
// unassigned leases, and moves leases for balance, only to workers whose
// worker-metrics item is valid and fresh, and its other workers take no
// lease on their own (coordinator/assignment/LeaseAssignmentManager.java
// performAssignment; leases/dynamodb/DynamoDBLeaseCoordinator.java runs the
// LeaseTaker only in DEFAULT_LEASE_COUNT_BASED_ASSIGNMENT mode, and in
// WORKER_UTILIZATION_AWARE_ASSIGNMENT mode only the LeaseDiscoverer, which
// picks up the leases assigned to the worker). With WithWorkerMetrics a ksp
// worker does the same:
//
//   - it publishes its metrics item every reporting interval, as the
//     KCL's WorkerMetricStatsReporter does, so the leader counts it (in
//     the table the leader reads; nowhere while there is no leader lock,
//     lease.FleetStore.PutWorkerMetrics);
//   - while the leader's lock is alive it takes only the leases assigned to
//     it (discover): no expired or unowned lease, no balancing, no hand-off
//     requests, so it never contends with the leader's assignments. It
//     still renews, checkpoints, honours hand-offs the leader starts,
//     releases its leases on shutdown and creates leases for new shards
//     (create-if-absent, as every KCL worker's shard sync may);
//   - when there is no leader lock, or it is released or has not been
//     heartbeaten for its lease duration (the lock client's rule for a dead
//     holder), it takes and balances on its own as without the option, so a
//     fleet of ksp workers, or one whose KCL workers are all gone, keeps
//     going. ksp never becomes the leader.
//
// On shutdown the item is left to expire, as the KCL leaves it: a leader
// stops counting a worker whose item is older than two reporting intervals
// and deletes it after a day (MigrationAwareLAMDataManager).

// supportCode is the KCL feature ordinal ksp reports (sup):
// SINGLE_TABLE_MIGRATION, as the KCL 3.5 does (WorkerMetricStats.Features,
// SUPPORT_CODE): ksp keeps its item in the lease table, which is what that
// feature means.
const supportCode = 1

// keptStats is how many values of each metric the item carries (the KCL's
// noOfPersistedMetricsPerWorkerMetrics, LeaseManagementConfig).
const keptStats = 10

// WithWorkerMetrics makes the worker a member of a KCL 3.x fleet (see
// docs/kcl-compat.md): it publishes a worker-metrics item every interval
// where the fleet's leader reads it (the lease table, or
// <app>-WorkerMetricStats), 0 meaning 30 s (the KCL's
// workerMetricsReporterFreqInMillis; give it the KCL workers' value), and,
// while a KCL 3.x leader holds its lock, takes only the leases the leader
// assigns to it. Use it when the
// lease table is shared with KCL 3.x workers; without it a KCL 3.x leader
// never assigns a lease to a ksp worker. The lease store must implement
// lease.FleetStore (lease/dynamo does). Default off.
func WithWorkerMetrics(interval time.Duration) Option {
	return optionFunc(func(c *config) {
		c.fleet = true
		c.metricsEvery = interval
		if interval == 0 {
			c.metricsEvery = 30 * time.Second
		}
	})
}

func (c *config) validateFleet(bad func(string, ...any)) {
	if !c.fleet {
		return
	}
	if c.metricsEvery < 10*time.Millisecond {
		bad("worker metrics interval %v is below 10ms", c.metricsEvery)
	}
	if _, ok := c.store.(lease.FleetStore); c.store != nil && !ok {
		bad("WithWorkerMetrics needs a lease store that implements lease.FleetStore (lease/dynamo), not %T", c.store)
	}
}

// leaderState is what the worker last saw of the leader's lock; only the
// run loop touches it.
type leaderState struct {
	owner, version string
	changed        time.Time // when owner or version last changed, by the local clock
	following      bool
}

// followLeader reports whether a KCL 3.x leader is alive, so the worker
// must only take what it assigns. A failed read keeps the last answer, so a
// blip neither starts nor stops deference.
func (w *worker) followLeader(ctx context.Context) bool {
	if !w.cfg.fleet {
		return false
	}
	opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
	l, found, err := w.cfg.store.(lease.FleetStore).GetLeaderLock(opCtx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("reading the KCL leader lock failed", "err", err)
		}
		return w.leader.following
	}
	now := time.Now()
	alive := false
	if found && !l.Released {
		if l.Owner != w.leader.owner || l.RecordVersion != w.leader.version || w.leader.changed.IsZero() {
			w.leader.owner, w.leader.version, w.leader.changed = l.Owner, l.RecordVersion, now
		}
		ttl := l.LeaseDuration
		if ttl <= 0 {
			ttl = w.cfg.failover
		}
		alive = now.Sub(w.leader.changed) <= ttl
	}
	if alive != w.leader.following {
		if alive {
			w.log.Info("a KCL 3.x leader holds the lock: taking only the leases it assigns", "leader", l.Owner)
		} else {
			w.log.Info("no live KCL 3.x leader: taking and balancing leases on its own")
			// What was seen while following is stale: start afresh, so
			// no lease looks expired before a failover time has passed.
			clear(w.obs)
			clear(w.live)
		}
		w.leader.following = alive
	}
	return alive
}

// publishMetrics writes the worker's metrics item every interval until ctx
// ends, the first at once.
func (w *worker) publishMetrics(ctx context.Context) {
	fs := w.cfg.store.(lease.FleetStore)
	cpu := newCPUShare()
	var stats []float64
	t := time.NewTicker(w.cfg.metricsEvery)
	defer t.Stop()
	for {
		m := lease.WorkerMetrics{
			WorkerID: w.id, LastUpdate: time.Now(), SupportCode: supportCode,
			Stats: map[string][]float64{}, OperatingRange: map[string][]int64{},
		}
		if v, ok := cpu.sample(); ok {
			stats = append(stats, v)
			stats = stats[max(0, len(stats)-keptStats):]
			m.Stats["C"] = stats
			m.OperatingRange["C"] = []int64{100}
		}
		opCtx, cancel := context.WithTimeout(ctx, w.opTimeout())
		err := fs.PutWorkerMetrics(opCtx, m)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("publishing worker metrics failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
