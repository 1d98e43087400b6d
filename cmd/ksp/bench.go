package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks that measure ksp and its peers in one run"}
	cmd.AddCommand(&cobra.Command{
		Use:   "server",
		Short: "PutRecords and GetRecords throughput of ksp, kinesalite and kinesis-mock",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("bench server: not implemented yet")
		},
	})
	return cmd
}
