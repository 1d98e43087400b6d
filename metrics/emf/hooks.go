package emf

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/metrics/internal/hookmetrics"
)

// Metrics adds up what the hooks report between two flushes: counters are
// summed, gauges keep their last value (and are written at every flush
// until the shard's lease is lost), distributions keep up to 100 samples
// (a uniform sample of what was reported, when there were more). Each flush
// writes one document per dimension set (more when the limits say so), the
// metrics carrying the KPL's and the KCL's CloudWatch names.
type Metrics struct {
	w *Writer

	mu     sync.Mutex // guards series
	series map[seriesKey]*series
}

// seriesKey is a metric and its label values.
type seriesKey struct {
	def    *hookmetrics.Def
	labels hookmetrics.Values
}

type series struct {
	value   float64   // a counter's sum, a gauge's value
	samples []float64 // a distribution's samples
	seen    int       // samples offered since the last flush
}

// ProducerMetrics is a producer hook writing the producer's metrics (the
// KPL's) with the dimension StreamName (and ErrorCode, ShardId where the
// metric has them).
type ProducerMetrics struct {
	hookmetrics.Producer
	*Metrics
}

// NewProducerMetrics returns hooks for any number of producers, writing
// to w.
func NewProducerMetrics(w *Writer) *ProducerMetrics {
	m := newMetrics(w)
	return &ProducerMetrics{Producer: hookmetrics.Producer{Sink: (*sink)(m)}, Metrics: m}
}

// ConsumerMetrics writes the consumer's metrics (the KCL's) with the
// dimensions StreamName, ApplicationName (left out when empty) and, for
// per-shard metrics, ShardId. Hooks gives each consumer its hooks.
type ConsumerMetrics struct{ *Metrics }

// NewConsumerMetrics returns metrics for any number of consumers, writing
// to w.
func NewConsumerMetrics(w *Writer) *ConsumerMetrics { return &ConsumerMetrics{newMetrics(w)} }

// Hooks returns the hooks of one consumer of stream in application app, for
// consumer.WithHooks.
func (m *ConsumerMetrics) Hooks(stream, app string) consumer.Hook {
	return hookmetrics.Consumer{Sink: (*sink)(m.Metrics), Stream: stream, App: app}
}

func newMetrics(w *Writer) *Metrics {
	return &Metrics{w: w, series: make(map[seriesKey]*series)}
}

// sink is Metrics as the hooks' Sink (a type of its own, so that Record and
// Forget are not methods of Metrics).
type sink Metrics

// Record adds v to the interval's series.
func (m *sink) Record(d *hookmetrics.Def, v float64, labels hookmetrics.Values) {
	k := seriesKey{d, labels}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.series[k]
	if s == nil {
		s = &series{}
		m.series[k] = s
	}
	switch d.Kind {
	case hookmetrics.Counter:
		s.value += v
	case hookmetrics.Gauge:
		s.value = v
	case hookmetrics.Distribution:
		s.seen++
		if len(s.samples) < MaxValues {
			s.samples = append(s.samples, v)
		} else if j := rand.IntN(s.seen); j < MaxValues {
			s.samples[j] = v // reservoir sampling: every sample kept with the same chance
		}
	}
}

// Forget drops a gauge's series.
func (m *sink) Forget(d *hookmetrics.Def, labels hookmetrics.Values) {
	k := seriesKey{d, labels}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.series, k)
}

// Flush writes what was reported since the last flush.
func (m *Metrics) Flush() error {
	groups := m.take()
	var errs []error
	for _, g := range groups {
		errs = append(errs, m.w.Emit(g.dims, g.metrics))
	}
	return errors.Join(errs...)
}

// Run flushes every interval, and once more when ctx ends. A failed flush
// loses that interval's documents but not the next ones: Run goes on and,
// when ctx ends, returns the first error a flush met (nil if none).
func (m *Metrics) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var first error
	for {
		select {
		case <-ctx.Done():
			return errors.Join(first, m.Flush())
		case <-t.C:
			if err := m.Flush(); err != nil && first == nil {
				first = err
			}
		}
	}
}

type group struct {
	key     string
	dims    []Dimension
	metrics []Metric
}

// take empties the interval's series (gauges stay) into documents' worth of
// metrics grouped by dimensions, in a stable order.
func (m *Metrics) take() []*group {
	m.mu.Lock()
	defer m.mu.Unlock()
	byDims := map[string]*group{}
	for k, s := range m.series {
		var dims []Dimension
		for i, l := range k.def.Labels {
			if k.labels[i] != "" {
				dims = append(dims, Dimension{Name: l.CloudWatch, Value: k.labels[i]})
			}
		}
		gk := dimsKey(dims)
		g := byDims[gk]
		if g == nil {
			g = &group{key: gk, dims: dims}
			byDims[gk] = g
		}
		metric := Metric{Name: k.def.Name, Unit: Unit(k.def.Unit)}
		switch k.def.Kind {
		case hookmetrics.Counter:
			metric.Values = []float64{s.value}
			delete(m.series, k)
		case hookmetrics.Gauge:
			metric.Values = []float64{s.value}
		case hookmetrics.Distribution:
			metric.Values = s.samples
			delete(m.series, k)
		}
		g.metrics = append(g.metrics, metric)
	}
	groups := make([]*group, 0, len(byDims))
	for _, g := range byDims {
		slices.SortFunc(g.metrics, func(a, b Metric) int { return cmp.Compare(a.Name, b.Name) })
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b *group) int { return cmp.Compare(a.key, b.key) })
	return groups
}

func dimsKey(dims []Dimension) string {
	var b strings.Builder
	for _, d := range dims {
		b.WriteString(d.Name)
		b.WriteByte(0)
		b.WriteString(d.Value)
		b.WriteByte(0)
	}
	return b.String()
}
