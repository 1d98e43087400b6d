package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Run executes the CLI with args and returns the process exit code. Tests
// call it directly.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "ksp",
		Short:         "ksp — Kinesis Stream Processor: a Kinesis-compatible server, producer, consumer and tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(serverCmd(), benchCmd(), demoCmd(), streamCmd(), putCmd(), tailCmd(), esmCmd(), leasesCmd(), topCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		var ue usageError
		fmt.Fprintln(stderr, "ksp:", err)
		// cobra reports an unknown subcommand with an error of its own.
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }
