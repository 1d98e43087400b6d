package main

import (
	"fmt"
	"io"
	"time"

	"github.com/ksp-project/ksp/internal/bench"
	"github.com/ksp-project/ksp/internal/progress"
	"github.com/spf13/cobra"
)

// runBench runs a benchmark, showing its phases on stderr (in a terminal
// with a live line saying how long the current phase has run; elsewhere
// with a plain line every 10 s), then prints its report as a table or as
// indented JSON.
func runBench[R interface{ WriteTable(io.Writer) error }](cmd *cobra.Command, asJSON bool, run func(phases io.Writer) (R, error)) error {
	phases := progress.StartPhases(cmd.ErrOrStderr(), progress.Options{})
	rep, err := run(phases)
	phases.Stop()
	if err != nil {
		return err
	}
	if asJSON {
		return bench.WriteJSON(cmd.OutOrStdout(), rep)
	}
	return rep.WriteTable(cmd.OutOrStdout())
}

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks that measure ksp and its peers in one run"}
	cmd.AddCommand(benchServerCmd())
	cmd.AddCommand(benchMemoryCmd())
	cmd.AddCommand(benchProduceCmd())
	cmd.AddCommand(benchConsumeCmd())
	cmd.AddCommand(benchESMCmd())
	cmd.AddCommand(benchReplicateCmd())
	cmd.AddCommand(benchNullServerCmd())
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
ksp on its durable disk store (ksp-always: fsync before each acknowledgement;
ksp-interval: fsync every 50 ms), kinesalite, kinesalite keeping its data on
disk (kinesalite-disk, --path) and kinesis-mock in one run, and print
records/s, the ratios to kinesalite (durable ksp: to kinesalite-disk) and
memory. Every record put is checked to be read back exactly once.

The null target is the clients' ceiling: a server that answers prepared
PutRecords and GetRecords responses and does no work. ksp's rates are printed
as a share of it, in this process (ksp, null) and as child processes
(ksp-process, null-process, where the server's CPU per record is measured
too), over HTTP/1.1 and h2c (--transports).

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
			return runBench(cmd, asJSON, func(phases io.Writer) (*bench.ServerReport, error) {
				cfg.Progress = phases
				return bench.RunServer(cmd.Context(), cfg)
			})
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Targets, "targets", bench.DefaultTargets(), "servers to measure, in order")
	f.StringSliceVar(&cfg.Transports, "transports", []string{bench.TransportHTTP1, bench.TransportH2C}, "client transports for ksp and the null targets: http1, h2c")
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

func benchProduceCmd() *cobra.Command {
	var (
		cfg    bench.ProduceConfig
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "User records/s through the producer into the embedded server, aggregation on and off",
		Long: `Put records with producer.Put (a handle per record) and producer.PutCallback
(a callback, no handle) from several goroutines into the embedded server
(limits off, in-memory store, producer rate limit off), with aggregation on
and then off, and print user records/s, CPU time and
allocations per user record (the in-process server included), Kinesis
records and average bytes per PutRecords request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			return runBench(cmd, asJSON, func(phases io.Writer) (*bench.ProduceReport, error) {
				cfg.Progress = phases
				return bench.RunProduce(cmd.Context(), cfg)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Records, "records", 1000000, "user records put with aggregation on")
	f.IntVar(&cfg.RawRecords, "raw-records", 200000, "user records put with aggregation off")
	f.IntVar(&cfg.Shards, "shards", 4, "shards of the benchmark stream")
	f.IntVar(&cfg.Size, "size", 100, "bytes of data per record")
	f.IntVar(&cfg.Writers, "writers", 4, "goroutines calling Put")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func benchESMCmd() *cobra.Command {
	var (
		cfg    bench.ESMConfig
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "esm",
		Short: "Records/s through esm.Run with a no-op handler, in process and over HTTP",
		Long: `Put records into the embedded server (limits off), then run them through
the event source mapping runner (esm.Run) with a no-op handler: called in
process, then as a function behind the Lambda Invoke HTTP API on loopback
(as ` + "`ksp esm --function-url`" + ` does). Print records/s and the mean invoke time
the runner sees: the overhead of an invoke over a handler that does nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			return runBench(cmd, asJSON, func(phases io.Writer) (*bench.ESMReport, error) {
				cfg.Progress = phases
				return bench.RunESM(cmd.Context(), cfg)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Records, "records", 100000, "records put and run through each mode")
	f.IntVar(&cfg.Shards, "shards", 4, "shards of the benchmark stream")
	f.IntVar(&cfg.BatchSize, "batch-size", 100, "the mapping's batch size")
	f.IntVar(&cfg.Size, "size", 100, "bytes of data per record")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// benchNullServerCmd serves the null target as a process, for the
// null-process target of `ksp bench server` (hidden: a tool of the
// benchmark, not for people).
func benchNullServerCmd() *cobra.Command {
	var size int
	cmd := &cobra.Command{
		Use:    "null-server",
		Short:  "serve the benchmark's null target (prepared answers, no work) until interrupted",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size < 8 || size > 1<<20 {
				return usageError{fmt.Errorf("--size must be in 8..1048576, not %d", size)}
			}
			return bench.ServeNull(cmd.Context(), size, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&size, "size", 100, "bytes of data of each record served")
	return cmd
}
