package main

import (
	"github.com/ksp-project/ksp/internal/bench"
	"github.com/spf13/cobra"
	"io"
)

func benchMemoryCmd() *cobra.Command {
	var (
		cfg    bench.MemoryConfig
		gib    float64
		kib    int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "Peak RSS of `ksp server` while 2 GiB go through it",
		Long: `Start ` + "`ksp server`" + ` (this executable) as a child process on a durable data
dir, put --gib GiB of --record-kib KiB records through it with PutRecords
(limits off), read them all back with GetRecords (each checked to come back
exactly once), and print the server process's peak RSS against the goal of
200 MiB: records must stream through the disk store, not accumulate in memory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Bytes = int64(gib * (1 << 30))
			cfg.Size = kib << 10
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			return runBench(cmd, asJSON, func(phases io.Writer) (*bench.MemoryReport, error) {
				cfg.Progress = phases
				return bench.RunMemory(cmd.Context(), cfg)
			})
		},
	}
	f := cmd.Flags()
	f.Float64Var(&gib, "gib", 2, "GiB of record data to put and read back")
	f.IntVar(&kib, "record-kib", 100, "KiB of data per record")
	f.StringVar(&cfg.Fsync, "fsync", "always", "the server's --fsync policy: always, interval or never")
	f.StringVar(&cfg.DataDir, "data-dir", "", "the server's --data-dir (default: a temporary directory, removed afterwards)")
	f.IntVar(&cfg.Shards, "shards", 4, "shards of the stream")
	f.IntVar(&cfg.Clients, "clients", 4, "concurrent putting clients")
	f.StringVar(&cfg.ServerMemoryLimit, "server-gomemlimit", "", "GOMEMLIMIT of the server process, e.g. 150MiB (default: none)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
