package cost

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ksp-project/ksp/metrics"
)

// Measurement is a stream's workload as a ksp server counted it over a
// window (the times of the first and last snapshots, the server's clock).
type Measurement struct {
	Stream  string    `json:"Stream"`
	Start   time.Time `json:"Start"`
	End     time.Time `json:"End"`
	Records float64   `json:"Records"` // IncomingRecords over the window
	Bytes   float64   `json:"Bytes"`   // IncomingBytes (data and partition keys)
	// PeakRecordsPerSecond is the highest IncomingRecords rate of one
	// sampling interval.
	PeakRecordsPerSecond float64 `json:"PeakRecordsPerSecond"`
	// PollingConsumers and FanoutConsumers are the bytes read by GetRecords
	// and by subscriptions over the bytes written, rounded: how many
	// applications read everything.
	PollingConsumers int `json:"PollingConsumers"`
	FanoutConsumers  int `json:"FanoutConsumers"`
}

// RecordsPerSecond is the window's average.
func (m *Measurement) RecordsPerSecond() float64 {
	secs := m.End.Sub(m.Start).Seconds()
	if secs <= 0 {
		return 0
	}
	return m.Records / secs
}

// Workload is the measurement as a workload to price (retention and
// aggregation are not measured: the caller sets them).
func (m *Measurement) Workload() Workload {
	w := Workload{RecordsPerSecond: m.RecordsPerSecond(), PeakRecordsPerSecond: m.PeakRecordsPerSecond,
		PollingConsumers: m.PollingConsumers, FanoutConsumers: m.FanoutConsumers}
	if m.Records > 0 {
		w.RecordBytes = m.Bytes / m.Records
	}
	w.PeakRecordsPerSecond = math.Max(w.PeakRecordsPerSecond, w.RecordsPerSecond)
	return w
}

// Fetcher reads a server's metrics (metrics.Fetch, or Server.Metrics in
// process).
type Fetcher func(context.Context) (*metrics.Snapshot, error)

// Measure samples the stream's counters every interval until window has
// passed (at least one interval) and returns what was written and read in
// between.
func Measure(ctx context.Context, fetch Fetcher, stream string, window, interval time.Duration) (*Measurement, error) {
	if interval <= 0 || window <= 0 {
		return nil, fmt.Errorf("cost: window %v and interval %v must be positive", window, interval)
	}
	first, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	if first.Stream(stream) == nil {
		return nil, fmt.Errorf("cost: stream %q is not in the server's metrics", stream)
	}
	m := &Measurement{Stream: stream, Start: first.Time}
	prev := first
	samples := max(1, int(window/interval))
	for range samples {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		cur, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		if cur.Stream(stream) == nil {
			return nil, fmt.Errorf("cost: stream %q left the server's metrics while it was measured", stream)
		}
		r := metrics.Rates(prev, cur).Stream(stream)
		m.PeakRecordsPerSecond = math.Max(m.PeakRecordsPerSecond, r.Counters[metrics.IncomingRecords])
		prev = cur
	}
	delta := func(name string) float64 {
		d := prev.Stream(stream).Counters[name] - first.Stream(stream).Counters[name]
		return math.Max(d, 0)
	}
	m.End = prev.Time
	m.Records = delta(metrics.IncomingRecords)
	m.Bytes = delta(metrics.IncomingBytes)
	if m.Bytes > 0 {
		m.PollingConsumers = int(math.Round(delta(metrics.GetRecordsBytes) / m.Bytes))
		m.FanoutConsumers = int(math.Round(delta(metrics.SubscribeToShardEventBytes) / m.Bytes))
	}
	return m, nil
}
