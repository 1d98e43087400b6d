package lease

import (
	"context"
	"time"
)

// FleetStore is implemented by lease tables shared with a Java KCL 3.x
// fleet (lease/dynamo): the items of such a table that are not leases but
// that a KCL 3.x leader reads to decide which worker gets which lease. See
// docs/kcl-compat.md.
type FleetStore interface {
	// PutWorkerMetrics writes the worker's metrics item, creating or
	// replacing it (the KCL's WorkerMetricStatsDAO.updateMetrics), where
	// the fleet's leader reads it; with no leader lock, nothing reads it
	// and nothing is written. It never changes a lease that happens to
	// have the worker's id as its key.
	PutWorkerMetrics(ctx context.Context, m WorkerMetrics) error
	// GetLeaderLock returns the KCL 3.x leader-election lock, found false
	// when the table holds none.
	GetLeaderLock(ctx context.Context) (l LeaderLock, found bool, err error)
	// ListWorkerReports returns when each worker of the fleet last wrote
	// its metrics item, from every table a leader reads them in (the
	// lease table and the legacy <table>-WorkerMetricStats), so a worker
	// can tell a live KCL 3.x fleet from one that is gone.
	ListWorkerReports(ctx context.Context) ([]WorkerReport, error)
}

// WorkerReport is when a worker last wrote its metrics item (its lut).
type WorkerReport struct {
	WorkerID   string
	LastUpdate time.Time
}

// WorkerMetrics is a worker's load as a KCL 3.x worker reports it
// (worker/metricstats/WorkerMetricStats.java).
type WorkerMetrics struct {
	WorkerID string
	// LastUpdate is when the item was written (lut, epoch seconds): a
	// leader counts the worker as alive while it is at most two reporting
	// intervals old.
	LastUpdate time.Time
	// Stats are the last values of each metric by its short name ("C" is
	// CPU, in percent), oldest first; -1 marks a failed capture. Empty
	// Stats and OperatingRange are the KCL's "default worker metric": the
	// leader then balances the worker by lease throughput.
	Stats map[string][]float64
	// OperatingRange is each metric's maximum utilization.
	OperatingRange map[string][]int64
	// SupportCode is the highest KCL feature ordinal the worker supports
	// (sup; 1 is SINGLE_TABLE_MIGRATION); its heartbeat (slu) is LastUpdate.
	SupportCode int
}

// LeaderLock is the KCL 3.x leader's lock item as the DynamoDB lock client
// keeps it: the holder heartbeats by changing RecordVersion, and the lock is
// free once RecordVersion has not changed for LeaseDuration or it is
// released.
type LeaderLock struct {
	Owner         string
	LeaseDuration time.Duration
	RecordVersion string
	Released      bool
	// Legacy reports that the lock is in the KCL 3.0–3.4 coordinator-state
	// table rather than in the lease table.
	Legacy bool
}
