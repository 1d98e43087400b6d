package promserver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/metrics/promserver"
)

// A snapshot's counters become counters with their CloudWatch values,
// iterator ages (milliseconds) become seconds, per shard where CloudWatch
// has the metric per shard; the result passes Prometheus' linter.
func TestCollectorExportsSnapshot(t *testing.T) {
	snap := &metrics.Snapshot{Time: time.Unix(1000, 0), Streams: []metrics.StreamMetrics{{
		StreamName: "orders", OpenShards: 1,
		Counters: map[string]float64{metrics.IncomingRecords: 7, metrics.PutRecordsSuccess: 2},
		Gauges:   map[string]float64{metrics.GetRecordsIteratorAge: 1500},
		Shards: []metrics.ShardMetrics{
			{ShardID: "shardId-000000000000", Open: true, Counters: map[string]float64{metrics.IncomingRecords: 7}, Gauges: map[string]float64{metrics.IteratorAge: 1500}},
			{ShardID: "shardId-000000000001", Counters: map[string]float64{metrics.IncomingRecords: 0}, Gauges: map[string]float64{metrics.IteratorAge: 0}},
		},
	}}}
	c := promserver.NewCollector(func() *metrics.Snapshot { return snap })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP kinesis_incoming_records_total Records put to the shard. CloudWatch AWS/Kinesis IncomingRecords (shard level).
# TYPE kinesis_incoming_records_total counter
kinesis_incoming_records_total{shard="shardId-000000000000",stream="orders"} 7
kinesis_incoming_records_total{shard="shardId-000000000001",stream="orders"} 0
# HELP kinesis_iterator_age_seconds Age of the last record of the shard's latest read (0 at the tip). CloudWatch AWS/Kinesis IteratorAgeMilliseconds (shard level).
# TYPE kinesis_iterator_age_seconds gauge
kinesis_iterator_age_seconds{shard="shardId-000000000000",stream="orders"} 1.5
kinesis_iterator_age_seconds{shard="shardId-000000000001",stream="orders"} 0
# HELP kinesis_get_records_iterator_age_seconds Largest iterator age of the stream's shards at their latest read. CloudWatch AWS/Kinesis GetRecords.IteratorAgeMilliseconds (stream level).
# TYPE kinesis_get_records_iterator_age_seconds gauge
kinesis_get_records_iterator_age_seconds{stream="orders"} 1.5
# HELP kinesis_put_records_success_total PutRecords calls answered (some entries may have failed). CloudWatch AWS/Kinesis PutRecords.Success (stream level).
# TYPE kinesis_put_records_success_total counter
kinesis_put_records_success_total{stream="orders"} 2
# HELP kinesis_open_shards Open shards of the stream (no CloudWatch counterpart; DescribeStreamSummary's OpenShardCount).
# TYPE kinesis_open_shards gauge
kinesis_open_shards{stream="orders"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"kinesis_incoming_records_total", "kinesis_iterator_age_seconds", "kinesis_get_records_iterator_age_seconds",
		"kinesis_put_records_success_total", "kinesis_open_shards"); err != nil {
		t.Fatal(err)
	}
	// A counter the snapshot lacks is left out, not reported as 0.
	if n := testutil.CollectAndCount(c, "kinesis_get_records_bytes_total"); n != 0 {
		t.Fatalf("kinesis_get_records_bytes_total: %d series for a counter the snapshot lacks", n)
	}
}
