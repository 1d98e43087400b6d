package bench

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/replicate"
)

// TestRunReplicateSmall runs the replication benchmark small: every record
// of each phase is acknowledged at the destination, with a lag measured,
// and the table names both phases.
func TestRunReplicateSmall(t *testing.T) {
	rep, err := RunReplicate(context.Background(), ReplicateConfig{Records: 2000, Rate: 1000, Duration: 500 * time.Millisecond, Shards: 2, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Records != 2000 || rep.Results[1].Records != 500 {
		t.Fatalf("results %+v; want the 2,000 backlog records and the 500 live ones", rep.Results)
	}
	for _, r := range rep.Results {
		if r.LagP99 <= 0 || r.LagP50 > r.LagP99 || r.PerSecond <= 0 {
			t.Fatalf("%s: p50 %v, p99 %v, %f records/s; want positive, ordered", r.Phase, r.LagP50, r.LagP99, r.PerSecond)
		}
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "backlog") || !strings.Contains(b.String(), "live") {
		t.Fatalf("table:\n%s", b.String())
	}
}

// cancelOn cancels a context once a line containing text is written.
type cancelOn struct {
	text   string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.text) {
		c.cancel()
	}
	return len(p), nil
}

// TestRunReplicateErrorWaitsForTheReplicator: a run that fails while the
// replicator runs (here its context ends as the backlog phase starts)
// returns only after the replicator returned, so it never outlives the
// servers under it. The replicator stands in for replicate.Run and lingers
// once stopped, as a graceful shutdown does.
func TestRunReplicateErrorWaitsForTheReplicator(t *testing.T) {
	var ended atomic.Bool
	runReplicator = func(ctx context.Context, _ replicate.Config) error {
		<-ctx.Done()
		linger := time.NewTimer(300 * time.Millisecond)
		defer linger.Stop()
		<-linger.C
		ended.Store(true)
		return nil
	}
	t.Cleanup(func() { runReplicator = replicate.Run })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := RunReplicate(ctx, ReplicateConfig{Records: 10, Rate: 10, Duration: 100 * time.Millisecond, Shards: 1, Poll: 20 * time.Millisecond,
		Progress: cancelOn{text: "replicate: backlog", cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want the run canceled", err)
	}
	if !ended.Load() {
		t.Fatal("RunReplicate returned while its replicator still ran")
	}
}
