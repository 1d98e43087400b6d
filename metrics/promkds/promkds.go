// Package promkds exports ksp's metrics to Prometheus.
//
// NewProducerCollector returns a value that is both the producer's metrics
// hook (pass it to producer.WithHooks) and a prometheus.Collector (register
// it); NewConsumerCollector returns a prometheus.Collector whose Hooks method
// gives each consumer its hooks (consumer.WithHooks). One collector serves
// any number of producers or consumers. Their metrics carry the KPL's and
// the KCL's CloudWatch names in Prometheus form (UserRecordsPut becomes
// ksp_producer_user_records_put_total, BufferingTime becomes
// ksp_producer_buffering_time_seconds); docs/metrics.md lists every one.
//
// The server's own metrics (CloudWatch's AWS/Kinesis names) are exported by
// package metrics/promserver.
//
// Hooks update the metrics as they are called: a scrape sees every value
// recorded before it. Times are exported in seconds, sizes in bytes.
package promkds

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/metrics/internal/hookmetrics"
)

// Option configures a collector.
type Option interface{ apply(*config) }

type config struct{ namespace string }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithNamespace sets the metrics' Prometheus namespace, the first part of
// every name. Default "ksp".
func WithNamespace(ns string) Option { return optionFunc(func(c *config) { c.namespace = ns }) }

func newConfig(opts []Option) config {
	c := config{namespace: "ksp"}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// ProducerCollector is a producer hook and a prometheus.Collector of the
// producer's metrics (the KPL's), labelled by stream.
type ProducerCollector struct {
	hookmetrics.Producer
	*vecs
}

// NewProducerCollector returns a collector for any number of producers.
func NewProducerCollector(opts ...Option) *ProducerCollector {
	v := newVecs(newConfig(opts).namespace, "producer", hookmetrics.ProducerDefs)
	return &ProducerCollector{Producer: hookmetrics.Producer{Sink: (*sink)(v)}, vecs: v}
}

// ConsumerCollector is a prometheus.Collector of the consumer's metrics
// (the KCL's), labelled by stream, application and, where the metric is per
// shard, shard. Hooks gives each consumer its hooks.
type ConsumerCollector struct{ *vecs }

// NewConsumerCollector returns a collector for any number of consumers.
func NewConsumerCollector(opts ...Option) *ConsumerCollector {
	return &ConsumerCollector{newVecs(newConfig(opts).namespace, "consumer", hookmetrics.ConsumerDefs)}
}

// Hooks returns the hooks of one consumer of stream in application app (the
// lease table's application, or any name that tells consumers apart), for
// consumer.WithHooks.
func (c *ConsumerCollector) Hooks(stream, app string) consumer.Hook {
	return hookmetrics.Consumer{Sink: (*sink)(c.vecs), Stream: stream, App: app}
}

// vecs holds one Prometheus vector per metric, and the series the hooks
// have used, so that recording a value looks up one map entry and
// allocates nothing.
type vecs struct {
	byDef map[*hookmetrics.Def]vec
	all   []prometheus.Collector

	mu     sync.RWMutex // guards series
	series map[seriesKey]series
}

// vec is the vector of one metric: one of its fields is set, by the
// metric's kind.
type vec struct {
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	hist    *prometheus.HistogramVec
}

type seriesKey struct {
	def    *hookmetrics.Def
	labels hookmetrics.Values
}

// series is one series of a vec: the field of the vec's kind is set.
type series struct {
	counter prometheus.Counter
	gauge   prometheus.Gauge
	hist    prometheus.Observer
}

var (
	_ prometheus.Collector = (*ProducerCollector)(nil)
	_ prometheus.Collector = (*ConsumerCollector)(nil)
)

func newVecs(namespace, subsystem string, defs []*hookmetrics.Def) *vecs {
	v := &vecs{byDef: make(map[*hookmetrics.Def]vec, len(defs)), series: make(map[seriesKey]series)}
	for _, d := range defs {
		labels := make([]string, len(d.Labels))
		for i, l := range d.Labels {
			labels[i] = l.Prom
		}
		var x vec
		var c prometheus.Collector
		switch d.Kind {
		case hookmetrics.Counter:
			x.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem, Name: d.Prom, Help: d.Help}, labels)
			c = x.counter
		case hookmetrics.Gauge:
			x.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem, Name: d.Prom, Help: d.Help}, labels)
			c = x.gauge
		case hookmetrics.Distribution:
			x.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: subsystem, Name: d.Prom, Help: d.Help, Buckets: d.Buckets}, labels)
			c = x.hist
		}
		v.byDef[d] = x
		v.all = append(v.all, c)
	}
	return v
}

// sink is vecs as the hooks' Sink (a type of its own, so that Record and
// Forget are not methods of the collectors).
type sink vecs

// Record adds to a counter, sets a gauge or observes a histogram, in
// Prometheus units (seconds for milliseconds).
func (v *sink) Record(d *hookmetrics.Def, val float64, labels hookmetrics.Values) {
	if d.Unit == hookmetrics.Milliseconds {
		val /= 1000
	}
	// The update happens under the lock Forget takes for writing, so a
	// series is never updated after it was deleted from its vec (it would
	// then stay cached and never be exported again).
	k := seriesKey{d, labels}
	v.mu.RLock()
	s, ok := v.series[k]
	if ok {
		s.record(val)
	}
	v.mu.RUnlock()
	if ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok = v.series[k]; !ok {
		s = v.newSeries(k)
		v.series[k] = s
	}
	s.record(val)
}

func (s series) record(val float64) {
	switch {
	case s.counter != nil:
		s.counter.Add(val)
	case s.gauge != nil:
		s.gauge.Set(val)
	case s.hist != nil:
		s.hist.Observe(val)
	}
}

// newSeries finds k's series in its vec. Caller holds v.mu for writing.
func (v *sink) newSeries(k seriesKey) series {
	lv := k.labels[:len(k.def.Labels)]
	var s series
	switch x := v.byDef[k.def]; {
	case x.counter != nil:
		s.counter = x.counter.WithLabelValues(lv...)
	case x.gauge != nil:
		s.gauge = x.gauge.WithLabelValues(lv...)
	case x.hist != nil:
		s.hist = x.hist.WithLabelValues(lv...)
	}
	return s
}

// Forget deletes a gauge's series.
func (v *sink) Forget(d *hookmetrics.Def, labels hookmetrics.Values) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.series, seriesKey{d, labels})
	if g := v.byDef[d].gauge; g != nil {
		g.DeleteLabelValues(labels[:len(d.Labels)]...)
	}
}

// Describe implements prometheus.Collector.
func (v *vecs) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range v.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (v *vecs) Collect(ch chan<- prometheus.Metric) {
	for _, c := range v.all {
		c.Collect(ch)
	}
}
