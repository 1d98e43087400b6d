// Command ksp is the Kinesis Stream Processor toolkit's CLI: the demo, the
// embedded Kinesis-compatible server, the benchmarks, and the everyday
// tools (stream admin, put, tail) that work against ksp and AWS alike.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
