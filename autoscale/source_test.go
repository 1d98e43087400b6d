package autoscale_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/autoscale"
	"github.com/ksp-project/ksp/metrics"
)

// TestSnapshotSourceConcurrentSamplesDoNotOverlap: of two concurrent
// Samples, the one that fetched the older snapshot but finished last does
// not become the start of the next rate, so successive samples never
// cover the same time twice.
func TestSnapshotSourceConcurrentSamplesDoNotOverlap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := func(secs int, records float64) *metrics.Snapshot {
		return &metrics.Snapshot{Time: t0.Add(time.Duration(secs) * time.Second), Streams: []metrics.StreamMetrics{{
			StreamName: "s", OpenShards: 1, Counters: map[string]float64{metrics.IncomingRecords: records}}}}
	}
	// Fetched in this order; the second fetch's caller is held until the
	// third's Sample returned.
	snaps := []*metrics.Snapshot{snap(0, 0), snap(10, 100), snap(20, 200), snap(30, 500)}
	var mu sync.Mutex
	fetches := 0
	inSecond, release := make(chan struct{}), make(chan struct{})
	src := autoscale.NewSnapshotSource(func(context.Context) (*metrics.Snapshot, error) {
		mu.Lock()
		n := fetches
		fetches++
		mu.Unlock()
		if n == 1 {
			close(inSecond)
			<-release
		}
		return snaps[n], nil
	})
	sample := func() autoscale.Sample {
		x, err := src.Sample(bg, "s")
		if err != nil {
			t.Error(err)
		}
		return x
	}
	sample()
	late := make(chan autoscale.Sample, 1)
	go func() { late <- sample() }()
	<-inSecond
	if x := sample(); x.Interval != 20*time.Second || x.IncomingRecords != 10 {
		t.Fatalf("the sample of 0…20 s: %+v; want 20 s at 10 records/s", x)
	}
	close(release)
	if x := <-late; x.Interval != 0 {
		t.Fatalf("the sample that fetched 10 s after the one of 20 s: %+v; want no interval", x)
	}
	if x := sample(); x.Interval != 10*time.Second || x.IncomingRecords != 30 {
		t.Fatalf("the sample after: %+v; want 20…30 s at 30 records/s", x)
	}
}
