package bench

import (
	"context"
	"strings"
	"testing"
	"time"
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
