package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/ksp-project/ksp/autoscale"
	"github.com/spf13/cobra"
)

func autoscaleCmd() *cobra.Command {
	var (
		a                 awsFlags
		cfg               autoscale.Config
		source, metricsAt string
		state             string
		decisions         int
		settle            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "autoscale STREAM",
		Short: "Scale a provisioned stream's shard count to its measured write load",
		Long: `Measure STREAM's write load every --interval and scale it with
UpdateShardCount: up as soon as the mean utilization over --window is above
--target (bytes/s and records/s against 1 MiB/s and 1,000 records/s per
shard, throttled writes included), down only after --quiet-period below
--scale-down with no throttling. Every call keeps AWS's rules: at most
double and at least half the open shards, at most 10,000 shards, within the
account's quota, at most 10 calls in any rolling 24 hours (--state FILE
keeps the calls across restarts).

The load comes from a ksp server's counters (--metrics ksp, GET /ksp/metrics
at --metrics-url, default the endpoint) or from CloudWatch (--metrics
cloudwatch). One line per decision; --dry-run decides without scaling;
--decisions N stops after N decisions.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Stream = args[0]
			if decisions < 0 {
				return usageError{fmt.Errorf("--decisions %d is negative", decisions)}
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			awsCfg, endpoint, err := a.config(ctx)
			if err != nil {
				return err
			}
			defer a.done()
			if source == "" {
				source = "cloudwatch"
				if endpoint != "" {
					source = "ksp"
				}
			}
			switch source {
			case "ksp":
				if metricsAt == "" {
					metricsAt = endpoint
				}
				if metricsAt == "" {
					return usageError{errors.New("--metrics ksp needs --metrics-url or --endpoint")}
				}
				cfg.Metrics = autoscale.NewServerSource(nil, strings.TrimSuffix(metricsAt, "/"))
			case "cloudwatch":
				cfg.Metrics = autoscale.NewCloudWatchSource(cloudWatchFrom(awsCfg, metricsAt), cfg.Interval, autoscale.SettleDelay(settle))
			default:
				return usageError{fmt.Errorf("--metrics %q: want ksp or cloudwatch", source)}
			}
			if cfg.Calls, err = loadCalls(state); err != nil {
				return err
			}
			cfg.Kinesis = kinesisFrom(awsCfg, endpoint)
			out := cmd.OutOrStdout()
			n := 0
			cfg.OnDecision = func(d autoscale.Decision) {
				printDecision(out, d)
				if d.Action != autoscale.Hold && !d.DryRun {
					if err := saveCalls(state, d.Time); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "ksp autoscale: %v\n", err)
					}
				}
				if n++; decisions > 0 && n >= decisions {
					stop()
				}
			}
			s, err := autoscale.New(cfg)
			if err != nil {
				return usageError{err}
			}
			return a.explain(s.Run(ctx))
		},
	}
	a.register(cmd)
	f := cmd.Flags()
	f.StringVar(&source, "metrics", "", "where the load is measured: ksp or cloudwatch (default: ksp with an endpoint, else cloudwatch)")
	f.StringVar(&metricsAt, "metrics-url", "", "ksp server URL for --metrics ksp (default: the endpoint); CloudWatch endpoint URL for --metrics cloudwatch")
	f.Float64Var(&cfg.TargetUtilization, "target", 0.7, "target utilization of the write capacity, (0, 1]")
	f.Float64Var(&cfg.ScaleDownUtilization, "scale-down", 0, "scale down below this utilization (default: half the target)")
	f.DurationVar(&cfg.Interval, "interval", time.Minute, "how often to measure and decide")
	f.DurationVar(&cfg.UpWindow, "window", 5*time.Minute, "load measured before a scale-up")
	f.DurationVar(&cfg.QuietPeriod, "quiet-period", time.Hour, "low load measured before a scale-down")
	f.IntVar(&cfg.MinShards, "min-shards", 1, "fewest shards")
	f.IntVar(&cfg.MaxShards, "max-shards", 0, "most shards (default: 10,000)")
	f.BoolVar(&cfg.DryRun, "dry-run", false, "decide and print, never call UpdateShardCount")
	f.StringVar(&state, "state", "", "JSON file keeping the UpdateShardCount calls of the last 24 hours across restarts")
	f.IntVar(&decisions, "decisions", 0, "stop after this many decisions (0: never)")
	f.DurationVar(&settle, "cloudwatch-settle", 0, "with --metrics cloudwatch, read only periods that ended at least this long ago (default: one period; CloudWatch publishes datapoints late)")
	return cmd
}

// cloudWatchFrom is the CloudWatch client of cfg at endpoint ("" for AWS's).
func cloudWatchFrom(cfg aws.Config, endpoint string) *cloudwatch.Client {
	var opts []func(*cloudwatch.Options)
	if endpoint != "" {
		// Local CloudWatch stand-ins (moto_server, LocalStack) speak awsQuery.
		opts = append(opts, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(endpoint) }, autoscale.QueryProtocol)
	}
	return cloudwatch.NewFromConfig(cfg, opts...)
}

func printDecision(w io.Writer, d autoscale.Decision) {
	dry := ""
	if d.DryRun {
		dry = " (dry run)"
	}
	errText := ""
	if d.Err != nil {
		errText = fmt.Sprintf(" error=%q", d.Err.Error())
	}
	fmt.Fprintf(w, "%s %s %s%s shards=%d target=%d utilization=%.2f bytes/s=%.0f records/s=%.0f throttled/s=%.1f reason=%q%s\n",
		d.Time.UTC().Format(time.RFC3339), d.Stream, d.Action, dry, d.Shards, d.Target, d.Utilization,
		d.BytesPerSecond, d.RecordsPerSecond, d.ThrottledPerSecond, d.Reason, errText)
}

// loadCalls reads the call times kept in the --state file ("" or a
// missing file: none).
func loadCalls(path string) ([]time.Time, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	var st struct{ Calls []time.Time }
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("--state %s: not a state file: %v", path, err)
	}
	return st.Calls, nil
}

// saveCalls adds a call to the --state file, keeping the last 24 hours,
// through a temporary file and a rename so a crash leaves the old one.
func saveCalls(path string, at time.Time) error {
	if path == "" {
		return nil
	}
	calls, err := loadCalls(path)
	if err != nil {
		return err
	}
	var keep []time.Time
	for _, c := range append(calls, at) {
		if c.After(at.Add(-24 * time.Hour)) {
			keep = append(keep, c)
		}
	}
	b, err := json.Marshal(struct{ Calls []time.Time }{keep})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("--state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--state: %w", err)
	}
	return nil
}
