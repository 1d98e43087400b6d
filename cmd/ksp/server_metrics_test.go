package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server/servertest"
)

// prometheusNames is what each CloudWatch AWS/Kinesis metric is called on
// /metrics (docs/metrics.md): per shard where CloudWatch has the metric per
// shard, per stream otherwise.
var prometheusNames = map[string]string{
	metrics.IncomingBytes:                      "kinesis_incoming_bytes_total",
	metrics.IncomingRecords:                    "kinesis_incoming_records_total",
	metrics.OutgoingBytes:                      "kinesis_outgoing_bytes_total",
	metrics.OutgoingRecords:                    "kinesis_outgoing_records_total",
	metrics.WriteProvisionedThroughputExceeded: "kinesis_write_provisioned_throughput_exceeded_total",
	metrics.ReadProvisionedThroughputExceeded:  "kinesis_read_provisioned_throughput_exceeded_total",
	metrics.IteratorAge:                        "kinesis_iterator_age_seconds",
	metrics.PutRecordSuccess:                   "kinesis_put_record_success_total",
	metrics.PutRecordBytes:                     "kinesis_put_record_bytes_total",
	metrics.PutRecordsSuccess:                  "kinesis_put_records_success_total",
	metrics.PutRecordsBytes:                    "kinesis_put_records_bytes_total",
	metrics.PutRecordsTotalRecords:             "kinesis_put_records_records_total",
	metrics.PutRecordsSuccessfulRecords:        "kinesis_put_records_successful_records_total",
	metrics.PutRecordsFailedRecords:            "kinesis_put_records_failed_records_total",
	metrics.PutRecordsThrottledRecords:         "kinesis_put_records_throttled_records_total",
	metrics.GetRecordsSuccess:                  "kinesis_get_records_success_total",
	metrics.GetRecordsRecords:                  "kinesis_get_records_records_total",
	metrics.GetRecordsBytes:                    "kinesis_get_records_bytes_total",
	metrics.SubscribeToShardSuccess:            "kinesis_subscribe_to_shard_success_total",
	metrics.SubscribeToShardEventRecords:       "kinesis_subscribe_to_shard_event_records_total",
	metrics.SubscribeToShardEventBytes:         "kinesis_subscribe_to_shard_event_bytes_total",
	metrics.GetRecordsIteratorAge:              "kinesis_get_records_iterator_age_seconds",
}

// `ksp server --metrics-addr` serves /metrics on both ports; while records
// flow, every shard's series move; every CloudWatch name of the server has
// its series, and the per-shard series add up to the stream's counters.
func TestServerPrometheusMetrics(t *testing.T) {
	out := runServer(t, "--in-memory", "--metrics-addr", "127.0.0.1:0")
	endpoint := endpointLine.FindStringSubmatch(out)
	metricsURLs := regexp.MustCompile(`metrics: (http://127\.0\.0\.1:\d+/metrics) `).FindAllStringSubmatch(out, -1)
	if endpoint == nil || len(metricsURLs) != 2 {
		t.Fatalf("startup lines lack the endpoint and two metrics URLs:\n%s", out)
	}
	if metricsURLs[0][1] != endpoint[1]+"/metrics" {
		t.Fatalf("first metrics URL %s is not on the API port %s", metricsURLs[0][1], endpoint[1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := servertest.NewClient(endpoint[1], "us-east-1")
	const stream = "metered"
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(ctx, client, stream); err != nil {
		t.Fatal(err)
	}
	shards := servertest.Shards(t, client, stream)

	// Records flow to both shards (an explicit hash key at the start of
	// each shard's range) until the scrapes have seen what they need.
	flowCtx, stopFlow := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		entries := make([]types.PutRecordsRequestEntry, len(shards))
		for i, sh := range shards {
			entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: sh.HashKeyRange.StartingHashKey, Data: []byte("0123456789")}
		}
		for range 1000 {
			if _, err := client.PutRecords(flowCtx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries}); err != nil {
				return // the flow was stopped
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	defer func() { stopFlow(); wg.Wait() }()

	first := scrape(t, ctx, metricsURLs[1][1])
	moved := false
	for range 1500 { // 30 s at most
		time.Sleep(20 * time.Millisecond)
		cur := scrape(t, ctx, metricsURLs[0][1])
		moved = true
		for _, sh := range shards {
			labels := map[string]string{"stream": stream, "shard": *sh.ShardId}
			if value(cur, "kinesis_incoming_records_total", labels) <= value(first, "kinesis_incoming_records_total", labels) {
				moved = false
			}
		}
		if moved {
			break
		}
	}
	if !moved {
		t.Fatal("the per-shard incoming series did not move while records flowed")
	}
	stopFlow()
	wg.Wait()
	for _, sh := range shards {
		servertest.ReadShard(t, client, stream, *sh.ShardId)
	}

	final := scrape(t, ctx, metricsURLs[1][1])
	snap, err := metrics.Fetch(ctx, nil, endpoint[1])
	if err != nil {
		t.Fatal(err)
	}
	sm := snap.Stream(stream)
	// Every CloudWatch name the server counts has its series, named as
	// docs/metrics.md says, with the CloudWatch name in its help.
	names := append(append(append([]string(nil), metrics.StreamCounters...), metrics.ShardCounters...), metrics.IteratorAge, metrics.GetRecordsIteratorAge)
	for _, cw := range names {
		name, ok := prometheusNames[cw]
		if !ok {
			t.Errorf("CloudWatch metric %s has no Prometheus name in this test's table", cw)
			continue
		}
		f := final[name]
		if f == nil {
			t.Errorf("CloudWatch metric %s: no %s on /metrics", cw, name)
			continue
		}
		if !strings.Contains(f.GetHelp(), "CloudWatch AWS/Kinesis "+cw+" (") {
			t.Errorf("%s: help %q does not name CloudWatch's %s", name, f.GetHelp(), cw)
		}
	}
	for name := range final {
		if strings.HasPrefix(name, "kinesis_") && name != "kinesis_open_shards" && !hasValue(prometheusNames, name) {
			t.Errorf("/metrics has %s, which maps to no CloudWatch name", name)
		}
	}
	// Per-shard series add up to CloudWatch's stream-level values.
	for _, cw := range []string{metrics.IncomingRecords, metrics.IncomingBytes, metrics.GetRecordsRecords} {
		got := 0.0
		if cw == metrics.GetRecordsRecords {
			got = value(final, prometheusNames[cw], map[string]string{"stream": stream})
		} else {
			for _, sh := range shards {
				got += value(final, prometheusNames[cw], map[string]string{"stream": stream, "shard": *sh.ShardId})
			}
		}
		if want := sm.Counters[cw]; got != want || want == 0 {
			t.Errorf("%s: /metrics says %v, the JSON snapshot %v", cw, got, want)
		}
	}
	if got := value(final, "kinesis_outgoing_records_total", map[string]string{"stream": stream, "shard": *shards[0].ShardId}); got == 0 {
		t.Error("kinesis_outgoing_records_total did not count the read")
	}
	if got := value(final, "kinesis_open_shards", map[string]string{"stream": stream}); got != 2 {
		t.Errorf("kinesis_open_shards = %v, want 2", got)
	}
}

func scrape(t *testing.T, ctx context.Context, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return fams
}

// value is the value of the series of name with exactly labels.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range fams[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && got[k] == v
		}
		if match {
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

func hasValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}
