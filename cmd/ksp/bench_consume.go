package main

import (
	"io"
	"os"

	"github.com/ksp-project/ksp/internal/bench"
	"github.com/spf13/cobra"
)

func benchConsumeCmd() *cobra.Command {
	var (
		cfg        bench.ConsumeConfig
		asJSON     bool
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Consumer drain rate, put-to-handler latency and failover time",
		Long: `Measure package consumer against the embedded server (limits off, in-memory
store):

  drain      one worker drains a stream pre-filled by the producer with
             aggregation on (drain-raw: off); user records/s from Run until the
             handler has seen every record; twice: cold (the first drain in
             the process) and warm (a new worker drains the stream again: a
             long-running consumer's steady state)
  latency    a producer puts records carrying their put time at --rate while a
             worker polls every --poll-interval; p50, p99 and max of handler
             time minus put time
  failover   two worker processes (this executable, hidden subcommand
             ` + "`ksp bench consume worker`" + `) share a SQLite lease table; once
             both hold leases one is killed with SIGKILL; the time until the
             survivor holds every lease

With --fanout the latency part runs a second time with the worker on enhanced
fan-out (SubscribeToShard) instead of polling, and both are printed; then
--apps applications consume the stream at once with AWS limits on, polling
(sharing 5 GetRecords calls/s per shard) and over fan-out (each with its own
2 MiB/s per shard), and what each got within 10 s is printed. Results
are printed against the goals: at least 1,500,000 user records/s drained
(aggregated), p99 latency within the poll interval plus 20 ms (over fan-out:
within 20 ms, and every fan-out application gets every record), failover within
the failover time plus one renewal interval (a third of it). A goal not met
is reported, not an error.

--multilang runs (alone, unless --parts is given) the MultiLang comparison: one
worker drains --multilang-records pre-filled user records through ` + "`ksp kcl`" + `'s
daemon (package multilang) to a no-op record processor written against the
aws-kcl npm package (a node process per shard), then through the same
consumer to the same no-op processor in Go; both checkpoint every batch.
Records/s of each and their ratio are printed. It needs node and the npm
peers (internal/peers/npm).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.MultiLang && !cmd.Flags().Changed("parts") {
				cfg.Parts = nil
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.CPUProfile = f
			}
			return runBench(cmd, asJSON, func(phases io.Writer) (*bench.ConsumeReport, error) {
				cfg.Progress = phases
				return bench.RunConsume(cmd.Context(), cfg)
			})
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Parts, "parts", []string{bench.ConsumeDrain, bench.ConsumeDrainRaw, bench.ConsumeLatency, bench.ConsumeFailover}, "parts to run")
	f.IntVar(&cfg.Records, "records", 1000000, "user records drained with aggregation on")
	f.IntVar(&cfg.RawRecords, "raw-records", 200000, "user records drained with aggregation off")
	f.IntVar(&cfg.Shards, "shards", 4, "shards of each stream")
	f.IntVar(&cfg.Size, "size", 100, "bytes of data per record")
	f.DurationVar(&cfg.DrainIdle, "drain-idle", bench.DefaultDrainIdle, "pause between GetRecords calls on a shard while draining")
	f.DurationVar(&cfg.PollInterval, "poll-interval", bench.DefaultPollInterval, "pause between GetRecords calls in the latency and failover parts")
	f.IntVar(&cfg.Rate, "rate", 2000, "records put per second in the latency part")
	f.DurationVar(&cfg.LatencyTime, "latency-time", bench.DefaultLatencyTime, "how long the latency part puts")
	f.DurationVar(&cfg.Linger, "linger", bench.DefaultLinger, "the latency producer's MaxBufferedTime")
	f.DurationVar(&cfg.Failover, "failover", bench.DefaultFailover, "the failover workers' failover time")
	f.BoolVar(&cfg.FanOut, "fanout", false, "measure the latency part over enhanced fan-out too (p99 goal 20ms), and several applications at once")
	f.IntVar(&cfg.Apps, "apps", 5, "applications consuming at once with --fanout")
	f.BoolVar(&cfg.MultiLang, "multilang", false, "compare a no-op aws-kcl Node.js processor under ksp kcl with the same processor in Go")
	f.IntVar(&cfg.MultiLangRecords, "multilang-records", 100000, "user records drained by each side of --multilang")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&cfg.CBOR, "cbor", false, "the drain and latency workers' GetRecords speak CBOR instead of JSON (sdkhttp.FastCodecsCBOR)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the warm aggregated drain (not its fill) to this file")
	cmd.AddCommand(benchConsumeWorkerCmd())
	return cmd
}

// benchConsumeWorkerCmd is a failover worker of `ksp bench consume`, which
// starts two of them.
func benchConsumeWorkerCmd() *cobra.Command {
	var cfg bench.ConsumeWorkerConfig
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "A failover worker process of ksp bench consume",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			return bench.RunConsumeWorker(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}
