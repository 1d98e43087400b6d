package top

import (
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/leaseview"
	"github.com/ksp-project/ksp/metrics"
)

// TestFrameAgainstLimits: each shard's rates are shown against the shard
// write limits; a closed shard nobody reads is left out; owners show.
func TestFrameAgainstLimits(t *testing.T) {
	rates := &metrics.Snapshot{Time: time.Now(), Interval: 2 * time.Second, Streams: []metrics.StreamMetrics{{
		StreamName: "s", Mode: "PROVISIONED", OpenShards: 2,
		Counters: map[string]float64{metrics.IncomingRecords: 750}, Gauges: map[string]float64{},
		Shards: []metrics.ShardMetrics{
			{ShardID: "shardId-000000000000", Open: false, Counters: map[string]float64{}, Gauges: map[string]float64{}},
			{ShardID: "shardId-000000000001", Open: true, Counters: map[string]float64{
				metrics.IncomingRecords: 500, metrics.IncomingBytes: 1 << 19, metrics.WriteProvisionedThroughputExceeded: 3,
			}, Gauges: map[string]float64{metrics.IteratorAge: 1500}},
			{ShardID: "shardId-000000000002", Open: true, Counters: map[string]float64{metrics.IncomingRecords: 250}, Gauges: map[string]float64{}},
		},
	}, {StreamName: "other", Counters: map[string]float64{}, Gauges: map[string]float64{}}}}
	var b strings.Builder
	f := Frame{Rates: rates, Streams: []string{"s"}, App: "app", Source: "test",
		Owners: map[string]map[string]leaseview.Row{"s": {"shardId-000000000001": {Owner: "w1", Lag: &leaseview.Lag{}}}}}
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"rates over 2.0s", "in 750 rec/s", "OWNER (app)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("frame lacks %q:\n%s", want, out)
		}
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "shardId-") {
			rows[f[0]] = strings.Join(f[1:], " ")
		}
	}
	if want := "500 50% 524288 50% 0 3.0/0 1.5s w1 0"; rows["shardId-000000000001"] != want {
		t.Fatalf("shard 1: %q; want %q\n%s", rows["shardId-000000000001"], want, out)
	}
	if want := "250 25% 0 0% 0 0/0 0s - -"; rows["shardId-000000000002"] != want {
		t.Fatalf("shard 2: %q; want %q\n%s", rows["shardId-000000000002"], want, out)
	}
	if strings.Contains(out, "shardId-000000000000") || strings.Contains(out, "other") {
		t.Fatalf("frame shows an idle closed shard or another stream:\n%s", out)
	}
}
