// Package promserver exports a ksp server's metrics to Prometheus: the
// counters the server keeps under CloudWatch's AWS/Kinesis names, per
// stream and per shard, read at scrape time (the server serves them at GET
// /metrics; docs/metrics.md lists every name). It depends on package
// metrics only, so the server can serve it without linking the clients.
package promserver

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ksp-project/ksp/metrics"
)

// Metric is how one of the server's CloudWatch metrics is exported.
type Metric struct {
	// CloudWatch is the AWS/Kinesis name (a key of metrics.StreamMetrics'
	// or metrics.ShardMetrics' Counters or Gauges).
	CloudWatch string
	// Prom is the Prometheus name without the namespace.
	Prom string
	// Shard is true for a per-shard series (labels stream and shard), false
	// for a per-stream one (label stream).
	Shard bool
	// Gauge is true for a gauge in milliseconds, exported in seconds; false
	// for a counter.
	Gauge bool
	Help  string
}

// Metrics is the mapping from CloudWatch's names to Prometheus'.
// IncomingBytes, IncomingRecords and the two ProvisionedThroughputExceeded
// counts are exported per shard only: CloudWatch's stream-level values are
// their sum by stream, and one name at two levels would count twice in every
// sum.
var Metrics = []Metric{
	{metrics.IncomingBytes, "incoming_bytes_total", true, false, "Bytes (data and partition keys) put to the shard."},
	{metrics.IncomingRecords, "incoming_records_total", true, false, "Records put to the shard."},
	{metrics.OutgoingBytes, "outgoing_bytes_total", true, false, "Bytes read from the shard (GetRecords and subscriptions)."},
	{metrics.OutgoingRecords, "outgoing_records_total", true, false, "Records read from the shard (GetRecords and subscriptions)."},
	{metrics.WriteProvisionedThroughputExceeded, "write_provisioned_throughput_exceeded_total", true, false, "Records refused for the shard's write limits."},
	{metrics.ReadProvisionedThroughputExceeded, "read_provisioned_throughput_exceeded_total", true, false, "GetRecords calls refused for the shard's read limits."},
	{metrics.IteratorAge, "iterator_age_seconds", true, true, "Age of the last record of the shard's latest read (0 at the tip)."},

	{metrics.PutRecordSuccess, "put_record_success_total", false, false, "Successful PutRecord calls."},
	{metrics.PutRecordBytes, "put_record_bytes_total", false, false, "Bytes put with PutRecord."},
	{metrics.PutRecordsSuccess, "put_records_success_total", false, false, "PutRecords calls answered (some entries may have failed)."},
	{metrics.PutRecordsBytes, "put_records_bytes_total", false, false, "Bytes put with PutRecords."},
	{metrics.PutRecordsTotalRecords, "put_records_records_total", false, false, "Entries sent in PutRecords calls."},
	{metrics.PutRecordsSuccessfulRecords, "put_records_successful_records_total", false, false, "PutRecords entries accepted."},
	{metrics.PutRecordsFailedRecords, "put_records_failed_records_total", false, false, "PutRecords entries that failed for another reason than throttling."},
	{metrics.PutRecordsThrottledRecords, "put_records_throttled_records_total", false, false, "PutRecords entries refused for the write limits."},
	{metrics.GetRecordsSuccess, "get_records_success_total", false, false, "Successful GetRecords calls."},
	{metrics.GetRecordsRecords, "get_records_records_total", false, false, "Records returned by GetRecords."},
	{metrics.GetRecordsBytes, "get_records_bytes_total", false, false, "Bytes returned by GetRecords."},
	{metrics.SubscribeToShardSuccess, "subscribe_to_shard_success_total", false, false, "Successful SubscribeToShard calls."},
	{metrics.SubscribeToShardEventRecords, "subscribe_to_shard_event_records_total", false, false, "Records sent in subscription events."},
	{metrics.SubscribeToShardEventBytes, "subscribe_to_shard_event_bytes_total", false, false, "Bytes sent in subscription events."},
	{metrics.GetRecordsIteratorAge, "get_records_iterator_age_seconds", false, true, "Largest iterator age of the stream's shards at their latest read."},
}

// Collector exports a server's counters at scrape time: each scrape
// takes one snapshot, so the hot path pays nothing for Prometheus.
type Collector struct {
	snapshot func() *metrics.Snapshot
	descs    []*prometheus.Desc // by Metrics' index
	openDesc *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// Namespace is the first part of every name, after CloudWatch's
// AWS/Kinesis.
const Namespace = "kinesis"

// NewCollector returns a collector of the snapshots snapshot returns
// (pass (*server.Server).Metrics, or a function that calls metrics.Fetch).
func NewCollector(snapshot func() *metrics.Snapshot) *Collector {
	ns := Namespace
	c := &Collector{snapshot: snapshot}
	for _, m := range Metrics {
		labels := []string{"stream"}
		level := "stream"
		if m.Shard {
			labels = append(labels, "shard")
			level = "shard"
		}
		help := m.Help + " CloudWatch AWS/Kinesis " + m.CloudWatch + " (" + level + " level)."
		c.descs = append(c.descs, prometheus.NewDesc(prometheus.BuildFQName(ns, "", m.Prom), help, labels, nil))
	}
	c.openDesc = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "open_shards"), "Open shards of the stream (no CloudWatch counterpart; DescribeStreamSummary's OpenShardCount).", []string{"stream"}, nil)
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.openDesc
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.snapshot()
	if snap == nil {
		return
	}
	for _, st := range snap.Streams {
		ch <- prometheus.MustNewConstMetric(c.openDesc, prometheus.GaugeValue, float64(st.OpenShards), st.StreamName)
		for i, m := range Metrics {
			if m.Shard {
				for _, sh := range st.Shards {
					c.emit(ch, i, sh.Counters, sh.Gauges, st.StreamName, sh.ShardID)
				}
				continue
			}
			c.emit(ch, i, st.Counters, st.Gauges, st.StreamName)
		}
	}
}

func (c *Collector) emit(ch chan<- prometheus.Metric, i int, counters, gauges map[string]float64, labels ...string) {
	m := Metrics[i]
	if m.Gauge {
		if v, ok := gauges[m.CloudWatch]; ok {
			ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.GaugeValue, v/1000, labels...)
		}
		return
	}
	if v, ok := counters[m.CloudWatch]; ok {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, v, labels...)
	}
}

// Handler serves the snapshots in Prometheus' exposition formats,
// with the Go runtime's and the process's metrics, from a registry of its
// own.
func Handler(snapshot func() *metrics.Snapshot) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(snapshot), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
