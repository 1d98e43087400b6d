package promkds_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/metrics/internal/flowtest"
	"github.com/ksp-project/ksp/metrics/promkds"
	"github.com/ksp-project/ksp/producer"
)

// The collectors count what really went through a producer and a consumer,
// pass the Prometheus linter, and register in a pedantic registry.
func TestCollectorsCountWhatFlowed(t *testing.T) {
	pc := promkds.NewProducerCollector()
	cc := promkds.NewConsumerCollector()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(pc, cc)

	flowtest.Run(t, []producer.Hook{pc}, []consumer.Hook{cc.Hooks(flowtest.Stream, flowtest.App)})

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	stream := map[string]string{"stream": flowtest.Stream}
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"ksp_producer_user_records_received_total", stream, flowtest.Records},
		{"ksp_producer_user_records_put_total", stream, flowtest.Records},
		{"ksp_producer_kinesis_records_put_total", stream, flowtest.Records}, // no aggregation: one each
		{"ksp_producer_kinesis_records_data_put_bytes_total", stream, flowtest.Records*flowtest.DataSize + float64(flowtest.KeyBytes)},
		{"ksp_producer_buffering_time_seconds", stream, flowtest.Records},      // samples
		{"ksp_producer_retries_per_record", stream, flowtest.Records},          // samples
		{"ksp_producer_user_record_latency_seconds", stream, flowtest.Records}, // samples
		{"ksp_consumer_records_processed_total", nil, flowtest.Records},        // over both shards
		{"ksp_consumer_data_bytes_processed_total", nil, flowtest.Records * flowtest.DataSize},
		{"ksp_consumer_leases_taken_total", map[string]string{"app": flowtest.App}, flowtest.Shards},
	}
	for _, w := range want {
		if got := sum(fams, w.name, w.labels); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	positive := []string{
		"ksp_producer_request_time_seconds", "ksp_producer_kinesis_records_per_put_records_request",
		"ksp_consumer_process_records_seconds", "ksp_consumer_checkpoints_total",
	}
	for _, name := range positive {
		if got := sum(fams, name, nil); got <= 0 {
			t.Errorf("%s = %v, want > 0", name, got)
		}
	}
	if got := sum(fams, "ksp_producer_errors_total", nil); got != 0 {
		t.Errorf("errors counted in a flow without errors: %v", got)
	}
	// MillisBehindLatest is per shard: one series for each shard read.
	if n := series(fams, "ksp_consumer_behind_latest_seconds"); n != flowtest.Shards {
		t.Errorf("ksp_consumer_behind_latest_seconds has %d series, want one per shard (%d)", n, flowtest.Shards)
	}
}

func TestNamespaceOption(t *testing.T) {
	pc := promkds.NewProducerCollector(promkds.WithNamespace("app"))
	pc.OnUserRecordReceived("s", 1)
	if got := testutil.CollectAndCount(pc, "app_producer_user_records_received_total"); got != 1 {
		t.Fatalf("app_producer_user_records_received_total: %d series, want 1", got)
	}
}

// sum adds up the values of the family's series whose labels include
// labels: counters and gauges by value, histograms by sample count.
func sum(fams []*dto.MetricFamily, name string, labels map[string]string) float64 {
	total := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return total
}

func series(fams []*dto.MetricFamily, name string) int {
	for _, f := range fams {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// Consumers of two streams share one collector, in one registry, on series
// of their own.
func TestConsumersShareACollector(t *testing.T) {
	cc := promkds.NewConsumerCollector()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cc)
	for _, stream := range []string{"a", "b"} {
		h := cc.Hooks(stream, "app").(consumer.HookRecordsProcessed)
		h.OnRecordsProcessed("shardId-000000000000", 3, 30, time.Millisecond)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{"a", "b"} {
		if got := sum(fams, "ksp_consumer_records_processed_total", map[string]string{"stream": stream}); got != 3 {
			t.Errorf("stream %s: %v records processed, want 3", stream, got)
		}
	}
}

// A lost lease removes the shard's lag series: the new owner reports it.
func TestLostLeaseForgetsTheShardsLag(t *testing.T) {
	cc := promkds.NewConsumerCollector()
	h := cc.Hooks("s", "app")
	h.(consumer.HookShardLag).OnShardLag("shardId-000000000000", 1500)
	h.(consumer.HookShardLag).OnShardLag("shardId-000000000001", 0)
	if got := testutil.CollectAndCount(cc, "ksp_consumer_behind_latest_seconds"); got != 2 {
		t.Fatalf("%d lag series, want 2", got)
	}
	h.(consumer.HookLeaseLost).OnLeaseLost("shardId-000000000000")
	if got := testutil.CollectAndCount(cc, "ksp_consumer_behind_latest_seconds"); got != 1 {
		t.Fatalf("%d lag series after the lease was lost, want 1", got)
	}
	// Reported again (the lease came back): the series is back.
	h.(consumer.HookShardLag).OnShardLag("shardId-000000000000", 250)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cc)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(fams, "ksp_consumer_behind_latest_seconds", map[string]string{"shard": "shardId-000000000000"}); got != 0.25 {
		t.Fatalf("lag %v s, want 0.25", got)
	}
	if got := sum(fams, "ksp_consumer_leases_lost_total", nil); got != 1 {
		t.Fatalf("leases lost %v, want 1", got)
	}
}
