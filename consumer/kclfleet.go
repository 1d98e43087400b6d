package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// ErrFleetTable reports, when Run starts, a lease table whose leases a live
// KCL 3.x fleet's leader assigns, met by a worker without WithWorkerMetrics:
// such a worker would take and balance leases on its own, against the
// leader's assignments. Nothing is taken. The error is a *FleetTableError.
var ErrFleetTable = errors.New("consumer: the lease table belongs to a live KCL 3.x fleet")

// FleetTableError says what Run found that makes the lease table a live
// KCL 3.x fleet's: the leader's lock, not released, and the workers whose
// metrics items are fresh. It matches ErrFleetTable.
type FleetTableError struct {
	Table  string // where the lock is: the lease table or <table>-CoordinatorState
	Leader string // the lock's owner
	// Workers are the other workers that reported their metrics within
	// the lock's lease duration (at least a minute).
	Workers []string
}

func (e *FleetTableError) Error() string {
	return fmt.Sprintf("%v: leader lock held by %q in %s, worker metrics reported lately by %s; "+
		"use WithWorkerMetrics (ksp kcl: clientVersionConfig = CLIENT_VERSION_CONFIG_3X) to take the leases the leader assigns",
		ErrFleetTable, e.Leader, e.Table, strings.Join(e.Workers, ", "))
}

func (e *FleetTableError) Unwrap() error { return ErrFleetTable }

// minFleetLiveness is the least time since a worker's last metrics report
// for which it counts as alive: twice the KCL's default reporting interval
// (workerMetricsReporterFreqInMillis, 30 s), the leader's own rule.
const minFleetLiveness = time.Minute

// checkFleetTable reads the lease table's KCL 3.x markers before the
// worker takes anything: with WithWorkerMetrics the worker follows a live
// leader anyway, and a store without fleet items (not lease.FleetStore)
// cannot have one. Without the option, a lock that is held (not released)
// while some other worker's metrics item is fresh means a live fleet
// whose leader assigns the leases: Run stops with a *FleetTableError. A
// lock whose workers all stopped reporting is a fleet that is gone, whose
// leases the worker may take over. Markers that cannot be read are warned
// about and the worker goes on, as it did before they existed.
func (c *config) checkFleetTable(ctx context.Context) error {
	fs, ok := c.store.(lease.FleetStore)
	if !ok || c.fleet {
		return nil
	}
	lock, found, err := fs.GetLeaderLock(ctx)
	if err == nil && (!found || lock.Released) {
		return nil
	}
	var reports []lease.WorkerReport
	if err == nil {
		reports, err = fs.ListWorkerReports(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("cannot read the lease table's KCL 3.x markers; going on as if there were none", "err", err)
		return nil
	}
	window := max(lock.LeaseDuration, minFleetLiveness)
	var live []string
	for _, r := range reports {
		if r.WorkerID != c.workerID && time.Since(r.LastUpdate) <= window {
			live = append(live, r.WorkerID)
		}
	}
	if len(live) == 0 {
		return nil
	}
	slices.Sort(live)
	where := "the lease table"
	if lock.Legacy {
		where = "the lease table's -CoordinatorState table"
	}
	return &FleetTableError{Table: where, Leader: lock.Owner, Workers: live}
}

// leaderState is what the worker last saw of the leader's lock; only the
// run loop touches it.
type leaderState struct {
	owner, version string
	changed        time.Time // when owner or version last changed, by the local clock
	following      bool
	read           bool // the lock was read at least once
}

// followLeader reports whether a KCL 3.x leader is alive, so the worker
// must only take what it assigns. A failed read keeps the last answer, so a
// blip neither starts nor stops deference; before the first successful
// read the answer is yes: a worker joining a fleet whose lock it cannot
// read yet takes only what is assigned to it, never balancing against a
// leader it has not seen.
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
		return w.leader.following || !w.leader.read
	}
	w.leader.read = true
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
