package main

import (
	"fmt"
	"time"

	"github.com/ksp-project/ksp/internal/bench"
	"github.com/spf13/cobra"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks that measure ksp and its peers in one run"}
	cmd.AddCommand(benchServerCmd())
	return cmd
}

func benchServerCmd() *cobra.Command {
	var (
		cfg         bench.ServerConfig
		peerSeconds float64
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "PutRecords and GetRecords throughput of ksp, kinesalite and kinesis-mock",
		Long: `Put records with PutRecords from concurrent aws-sdk-go-v2 clients, then drain
them with GetRecords, against ksp (embedded, limits off, in-memory store),
kinesalite and kinesis-mock in one run, and print records/s, the ratios to
kinesalite and memory. Every record put is checked to be read back exactly once.

Peers are slow, so they get --peer-records records at most and a put phase of
about --peer-seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if peerSeconds <= 0 {
				return usageError{fmt.Errorf("--peer-seconds must be positive, not %g", peerSeconds)}
			}
			cfg.PeerTime = time.Duration(peerSeconds * float64(time.Second))
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			cfg.Progress = cmd.ErrOrStderr()
			rep, err := bench.RunServer(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Targets, "targets", []string{bench.TargetKSP, bench.TargetKinesalite, bench.TargetKinesisMock}, "servers to measure, in order")
	f.IntVar(&cfg.Records, "records", 200000, "records put into ksp")
	f.IntVar(&cfg.PeerRecords, "peer-records", 20000, "most records put into each peer")
	f.Float64Var(&peerSeconds, "peer-seconds", 10, "time budget in seconds of a peer's put phase")
	f.IntVar(&cfg.Rounds, "rounds", 1, "runs of each target, interleaved; the best rates are kept")
	f.IntVar(&cfg.Shards, "shards", 4, "shards of the benchmark stream")
	f.IntVar(&cfg.Clients, "clients", 8, "concurrent putting clients")
	f.IntVar(&cfg.Batch, "batch", 500, "records per PutRecords call")
	f.IntVar(&cfg.Size, "size", 100, "bytes of data per record")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
