package main

import (
	"github.com/ksp-project/ksp/internal/bench"
	"github.com/spf13/cobra"
	"io"
)

func benchReplicateCmd() *cobra.Command {
	var (
		cfg    bench.ReplicateConfig
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "replicate",
		Short: "Records/s replicated between two embedded servers and the replication lag",
		Long: `Start two embedded servers (limits off) and replicate a stream from one to
the other with replicate.Run (ksp replicate's library form): first a backlog
of --records put beforehand, replicated as fast as it goes (records/s), then
a live load of --rate records/s for --duration (replication lag p50 and p99:
source arrival to destination acknowledgement).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			return runBench(cmd, asJSON, func(phases io.Writer) (*bench.ReplicateReport, error) {
				cfg.Progress = phases
				return bench.RunReplicate(cmd.Context(), cfg)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Records, "records", 100000, "records of the backlog phase")
	f.IntVar(&cfg.Rate, "rate", 2000, "records/s of the live phase")
	f.DurationVar(&cfg.Duration, "duration", 0, "length of the live phase (default 5s)")
	f.IntVar(&cfg.Shards, "shards", 4, "shards of the source and destination streams")
	f.IntVar(&cfg.Size, "size", 100, "bytes of data per record")
	f.DurationVar(&cfg.Poll, "poll", 0, "the replicator's wait between reads of a shard at its tip (default 200ms)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
