package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/cost"
	"github.com/ksp-project/ksp/metrics"
	"github.com/spf13/cobra"
)

func costCmd() *cobra.Command {
	var (
		a                  awsFlags
		w                  cost.Workload
		prices, fromStream string
		asJSON             bool
		window, interval   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Price a Kinesis workload per month, provisioned and on-demand",
		Long: `Price a workload per month in both capacity modes: the shards it needs,
PUT payload units with and without KPL-style aggregation, extended and
long-term retention, enhanced fan-out data and consumer-shard hours.

The price table shipped with ksp is us-east-1's, with its source and date;
--prices FILE reads another in the same JSON format.

--from-stream S measures the workload (records/s, its peak, record size,
how many applications read with GetRecords and with fan-out) from a ksp
server's metrics at --endpoint over --window; the stream's retention is read
from the stream. Flags given explicitly win over what is measured. The
server counts Kinesis records as they arrive: when the producers already
aggregate (ksp put, the KPL), leave --aggregation off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := cost.DefaultPrices()
			if prices != "" {
				var err error
				if p, err = cost.LoadPrices(prices); err != nil {
					return err
				}
			}
			var m *cost.Measurement
			if fromStream != "" {
				var err error
				m, err = measure(cmd, &a, fromStream, window, interval, &w)
				if err != nil {
					return err
				}
			} else if w.RecordsPerSecond == 0 {
				return usageError{errors.New("give --records-per-second and --record-bytes, or --from-stream")}
			}
			e, err := cost.Compute(w, p)
			if err != nil {
				return usageError{err}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					*cost.Estimate
					Measured *cost.Measurement `json:"Measured,omitempty"`
				}{e, m})
			}
			if m != nil {
				fmt.Fprintf(out, "measured %s from %s to %s: %.0f records, %.0f bytes\n", m.Stream,
					m.Start.Format(time.RFC3339Nano), m.End.Format(time.RFC3339Nano), m.Records, m.Bytes)
			}
			return e.WriteTable(out)
		},
	}
	a.register(cmd)
	f := cmd.Flags()
	f.Float64Var(&w.RecordsPerSecond, "records-per-second", 0, "average records written per second")
	f.Float64Var(&w.PeakRecordsPerSecond, "peak-records-per-second", 0, "peak records per second (sizes the shards; default the average)")
	f.Float64Var(&w.RecordBytes, "record-bytes", 0, "average record size in bytes (data and partition key)")
	f.IntVar(&w.RetentionHours, "retention-hours", 24, "retention period, 24..8760")
	f.IntVar(&w.PollingConsumers, "polling", 1, "applications reading with GetRecords (KCL polling)")
	f.IntVar(&w.FanoutConsumers, "fanout", 0, "enhanced fan-out consumers")
	f.BoolVar(&w.Aggregation, "aggregation", false, "producers aggregate records KPL-style")
	f.StringVar(&prices, "prices", "", "price table JSON (default: the shipped us-east-1 table)")
	f.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	f.StringVar(&fromStream, "from-stream", "", "measure the workload of this stream from a ksp server's metrics (--endpoint)")
	f.DurationVar(&window, "window", time.Minute, "how long --from-stream measures")
	f.DurationVar(&interval, "interval", time.Second, "sampling interval of --from-stream (the peak is the busiest interval)")
	return cmd
}

// measure fills w from the stream's metrics; flags the user gave win.
func measure(cmd *cobra.Command, a *awsFlags, stream string, window, interval time.Duration, w *cost.Workload) (*cost.Measurement, error) {
	ctx := cmd.Context()
	if a.endpoint == "" && os.Getenv("KSP_ENDPOINT") == "" {
		return nil, usageError{errors.New("--from-stream reads a ksp server's metrics: give --endpoint (CloudWatch is not read)")}
	}
	cfg, endpoint, err := a.config(ctx)
	if err != nil {
		return nil, err
	}
	defer a.done()
	d, err := kinesisFrom(cfg, endpoint).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, a.explain(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	m, err := cost.Measure(ctx, func(ctx context.Context) (*metrics.Snapshot, error) {
		return metrics.Fetch(ctx, hc, endpoint)
	}, stream, window, interval)
	if err != nil {
		return nil, err
	}
	measured := m.Workload()
	measured.RetentionHours = int(aws.ToInt32(d.StreamDescriptionSummary.RetentionPeriodHours))
	set := cmd.Flags().Changed
	override(cmd, "records-per-second", &measured.RecordsPerSecond, w.RecordsPerSecond)
	override(cmd, "peak-records-per-second", &measured.PeakRecordsPerSecond, w.PeakRecordsPerSecond)
	override(cmd, "record-bytes", &measured.RecordBytes, w.RecordBytes)
	override(cmd, "retention-hours", &measured.RetentionHours, w.RetentionHours)
	override(cmd, "polling", &measured.PollingConsumers, w.PollingConsumers)
	override(cmd, "fanout", &measured.FanoutConsumers, w.FanoutConsumers)
	measured.Aggregation = w.Aggregation
	measured.PeakRecordsPerSecond = max(measured.PeakRecordsPerSecond, measured.RecordsPerSecond)
	if measured.RecordsPerSecond == 0 && !set("records-per-second") {
		return nil, fmt.Errorf("stream %s received no records in %v: nothing to price (feed it, or give --records-per-second)", stream, window)
	}
	*w = measured
	return m, nil
}
