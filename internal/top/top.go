// Package top renders `ksp top`: per shard, the incoming records/s and
// bytes/s against the shard write limits, outgoing rates, throttles and
// iterator age, with the lease owners of a consuming application.
//
// Rates come from a Source: the ksp server's cumulative counters turned
// into rates between two snapshots (Server), or CloudWatch's AWS/Kinesis
// shard-level metrics (CloudWatch, which needs enhanced monitoring on the
// stream). Both fill a metrics.Snapshot of per-second rates, so one view
// shows either.
package top

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/internal/leaseview"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/metrics"
)

// Source gives per-second rates (a metrics.Snapshot as Rates makes it).
type Source interface {
	// Rates returns the rates of the last interval: the first call may
	// wait one interval to have two points.
	Rates(ctx context.Context) (*metrics.Snapshot, error)
}

// Server reads a ksp server's counters (metrics.Fetch) and returns the rates
// since the previous call.
type Server struct {
	HTTP     *http.Client // nil: http.DefaultClient
	Endpoint string
	// Interval is how long the first call waits between its two snapshots.
	Interval time.Duration
	prev     *metrics.Snapshot
}

// Rates implements Source.
func (s *Server) Rates(ctx context.Context) (*metrics.Snapshot, error) {
	if s.prev == nil {
		prev, err := metrics.Fetch(ctx, s.HTTP, s.Endpoint)
		if err != nil {
			return nil, err
		}
		s.prev = prev
		if err := backoff.Sleep(ctx, s.Interval); err != nil {
			return nil, err
		}
	}
	cur, err := metrics.Fetch(ctx, s.HTTP, s.Endpoint)
	if err != nil {
		return nil, err
	}
	r := metrics.Rates(s.prev, cur)
	s.prev = cur
	return r, nil
}

// Frame is one refresh of the view.
type Frame struct {
	// Rates are per-second rates (metrics.Rates' output).
	Rates *metrics.Snapshot
	// Streams limits the view to these streams; empty: every stream.
	Streams []string
	// Owners are lease rows by stream and shard id, from --app; nil: none.
	Owners map[string]map[string]leaseview.Row
	// App names the application the owners belong to.
	App string
	// Source names where the rates come from, for the title.
	Source string
}

// Write renders the frame as text.
func (f Frame) Write(w io.Writer) error {
	over := ""
	if f.Rates.Interval > 0 {
		over = fmt.Sprintf(" (rates over %.1fs)", f.Rates.Interval.Seconds())
	}
	fmt.Fprintf(w, "ksp top — %s — %s%s\n", f.Source, f.Rates.Time.Local().Format("15:04:05"), over)
	for _, sm := range f.Rates.Streams {
		if len(f.Streams) > 0 && !slices.Contains(f.Streams, sm.StreamName) {
			continue
		}
		f.writeStream(w, sm)
	}
	return nil
}

func (f Frame) writeStream(w io.Writer, sm metrics.StreamMetrics) {
	c := sm.Counters
	fmt.Fprintf(w, "\n%s  %s  %d open shards  in %s rec/s %s/s  out %s rec/s  throttled: write %s rec/s, read %s calls/s  iterator age %s\n",
		sm.StreamName, sm.Mode, sm.OpenShards, num(c[metrics.IncomingRecords]), bytesPer(c[metrics.IncomingBytes]),
		num(c[metrics.GetRecordsRecords]+c[metrics.SubscribeToShardEventRecords]),
		num(c[metrics.WriteProvisionedThroughputExceeded]), num(c[metrics.ReadProvisionedThroughputExceeded]),
		age(sm.Gauges[metrics.GetRecordsIteratorAge]))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"SHARD", "IN REC/S", "%1000", "IN B/S", "%1MiB", "OUT REC/S", "THROTTLED W/R", "ITER AGE"}
	owners := f.Owners[sm.StreamName]
	if f.Owners != nil {
		head = append(head, "OWNER ("+f.App+")", "BEHIND")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, sh := range sm.Shards {
		sc := sh.Counters
		in, inB := sc[metrics.IncomingRecords], sc[metrics.IncomingBytes]
		if !sh.Open && in == 0 && sc[metrics.OutgoingRecords] == 0 {
			continue // a closed shard nobody reads
		}
		id := sh.ShardID
		if !sh.Open {
			id += " (closed)"
		}
		row := []string{id, num(in), pct(in, kds.ShardWriteRecordsPerSecond), num(inB), pct(inB, kds.ShardWriteBytesPerSecond),
			num(sc[metrics.OutgoingRecords]),
			num(sc[metrics.WriteProvisionedThroughputExceeded]) + "/" + num(sc[metrics.ReadProvisionedThroughputExceeded]),
			age(sh.Gauges[metrics.IteratorAge])}
		if f.Owners != nil {
			owner, behind := "-", "-"
			if r, ok := owners[sh.ShardID]; ok {
				owner, behind = r.Owner, r.Lag.String()
				if owner == "" {
					owner = "(none)"
				}
			}
			row = append(row, owner, behind)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// num prints a rate with the precision it needs.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func pct(v, limit float64) string { return fmt.Sprintf("%.0f%%", 100*v/limit) }

func bytesPer(v float64) string {
	switch {
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func age(ms float64) string {
	return (time.Duration(ms) * time.Millisecond).Round(100 * time.Millisecond).String()
}
