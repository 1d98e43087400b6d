package autoscale

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ksp-project/ksp/metrics"
)

// Sample is a stream's write load over one interval.
type Sample struct {
	// Time is the end of the interval, Interval its length; a sample with
	// no interval (the first of a source) carries no rates and is ignored.
	Time     time.Time
	Interval time.Duration
	// OpenShards is the stream's open shard count when it was measured; 0
	// when the source cannot tell: the scaler then uses the current count.
	OpenShards int
	// IncomingBytes and IncomingRecords are what the stream accepted, per
	// second; WriteThrottled the records it refused for throughput
	// (WriteProvisionedThroughputExceeded), per second.
	IncomingBytes, IncomingRecords, WriteThrottled float64
}

// Source measures a stream's load. Implementations: SnapshotSource (a ksp
// server's counters) and CloudWatchSource.
type Source interface {
	Sample(ctx context.Context, stream string) (Sample, error)
}

// SnapshotSource turns cumulative ksp server snapshots (package metrics)
// into samples: each Sample is the rate since the previous one. It is safe
// for concurrent use.
type SnapshotSource struct {
	fetch func(ctx context.Context) (*metrics.Snapshot, error)

	mu   sync.Mutex // guards: prev
	prev *metrics.Snapshot
}

// NewSnapshotSource measures with fetch, which returns the server's
// current snapshot (for an embedded server: srv.Metrics).
func NewSnapshotSource(fetch func(ctx context.Context) (*metrics.Snapshot, error)) *SnapshotSource {
	return &SnapshotSource{fetch: fetch}
}

// NewServerSource measures a ksp server at endpoint through GET
// /ksp/metrics (hc nil: http.DefaultClient).
func NewServerSource(hc *http.Client, endpoint string) *SnapshotSource {
	return NewSnapshotSource(func(ctx context.Context) (*metrics.Snapshot, error) {
		return metrics.Fetch(ctx, hc, endpoint)
	})
}

// Sample returns the stream's rates since the previous call (none on the
// first call).
func (s *SnapshotSource) Sample(ctx context.Context, stream string) (Sample, error) {
	cur, err := s.fetch(ctx)
	if err != nil {
		return Sample{}, fmt.Errorf("autoscale: reading the server's metrics: %w", err)
	}
	s.mu.Lock()
	prev := s.prev
	if prev == nil || cur.Time.After(prev.Time) {
		// A concurrent Sample that fetched earlier and got here later
		// must not take the next rate's start back in time: the rates
		// of two samples would then overlap.
		s.prev = cur
	}
	s.mu.Unlock()
	sm := cur.Stream(stream)
	if sm == nil {
		return Sample{}, fmt.Errorf("autoscale: the server's metrics have no stream %s", stream)
	}
	out := Sample{Time: cur.Time, OpenShards: sm.OpenShards}
	if prev == nil || !cur.Time.After(prev.Time) {
		return out, nil
	}
	rates := metrics.Rates(prev, cur).Stream(stream)
	out.Interval = cur.Time.Sub(prev.Time)
	out.IncomingBytes = rates.Counters[metrics.IncomingBytes]
	out.IncomingRecords = rates.Counters[metrics.IncomingRecords]
	out.WriteThrottled = rates.Counters[metrics.WriteProvisionedThroughputExceeded]
	return out, nil
}
