package main

import (
	"fmt"
	"time"

	"github.com/ksp-project/ksp/internal/demo"
	"github.com/spf13/cobra"
)

func demoCmd() *cobra.Command {
	var (
		cfg    demo.Config
		limits string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run ksp end to end in this process: server, producer and two consumers",
		Long: `Run ksp end to end with no AWS account and check the result.

It starts the embedded Kinesis server in memory (AWS limits on unless
--limits off), creates the stream ` + demo.Stream + `, puts --records small
JSON order events with the producer (KPL aggregation, strict ordering,
partition key = customer id), and consumes them with two consumer workers
sharing a SQLite lease table in a temporary directory. It prints progress
every second and a summary, and exits 0 only when every record was consumed
exactly once and in per-key order; after --timeout it reports what is
missing and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch limits {
			case "on":
			case "off":
				cfg.NoLimits = true
			default:
				return usageError{fmt.Errorf("--limits must be on or off, not %q", limits)}
			}
			if cfg.Records < 1 {
				return usageError{fmt.Errorf("--records %d is below 1", cfg.Records)}
			}
			if cfg.Shards < 1 || cfg.Shards > 500 {
				return usageError{fmt.Errorf("--shards %d is outside 1…500", cfg.Shards)}
			}
			if cfg.Timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %v is not positive", cfg.Timeout)}
			}
			return demo.Run(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Records, "records", 20000, "order events to put and consume")
	f.IntVar(&cfg.Shards, "shards", 4, "shards of the demo stream")
	f.StringVar(&limits, "limits", "on", "per-shard throughput limits as on AWS: on or off")
	f.DurationVar(&cfg.Timeout, "timeout", time.Minute, "give up and report what is missing after this long")
	return cmd
}
