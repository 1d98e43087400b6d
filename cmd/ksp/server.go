package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/ksp-project/ksp/server"
	"github.com/spf13/cobra"
)

func serverCmd() *cobra.Command {
	var (
		opts       server.Options
		limits     string
		logLevel   string
		errorRates []string
		throttle   []string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Kinesis-compatible server",
		Long: `Run ksp's Kinesis Data Streams-compatible server until interrupted.

It speaks the real wire protocol (JSON and CBOR, HTTP/1.1 and h2c), so the AWS
CLI, the AWS SDKs and the Java KCL work against it unchanged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch limits {
			case "on":
			case "off":
				opts.DisableLimits = true
			default:
				return usageError{fmt.Errorf("--limits must be on or off, not %q", limits)}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level %q: %v", logLevel, err)}
			}
			opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			rates, err := parseRates(errorRates)
			if err != nil {
				return usageError{err}
			}
			opts.Faults.ErrorRate = rates
			opts.Faults.Throttle = throttle
			srv, err := server.New(opts)
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				srv.Close()
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ksp Kinesis server listening on %s (region %s, account %s, limits %s)\n", srv.URL(), srv.Region(), srv.Account(), limits)
			fmt.Fprintf(out, "  AWS CLI: AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --region %s --endpoint-url %s kinesis list-streams\n", srv.Region(), srv.URL())
			fmt.Fprintf(out, "  SDKs:    set the endpoint (AWS_ENDPOINT_URL_KINESIS=%s) and any static credentials\n", srv.URL())
			<-cmd.Context().Done()
			fmt.Fprintln(out, "ksp server stopping")
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", "127.0.0.1:4567", "listen address")
	f.StringVar(&opts.Region, "region", "us-east-1", "region used in ARNs")
	f.StringVar(&opts.Account, "account", "000000000000", "account id used in ARNs")
	f.StringVar(&limits, "limits", "on", "per-shard throughput limits as on AWS: on or off")
	f.DurationVar(&opts.CreateDelay, "create-delay", 0, "how long streams stay CREATING/DELETING/UPDATING")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&opts.ShardLimit, "shard-limit", 500, "account shard quota")
	f.DurationVar(&opts.Faults.Latency, "fault-latency", 0, "latency added to every request")
	f.StringSliceVar(&errorRates, "fault-error-rate", nil, "OPERATION=RATE (0..1; OPERATION may be *): fail that share of calls")
	f.StringVar(&opts.Faults.ErrorCode, "fault-error-code", "", "AWS error code of injected failures (default InternalFailure)")
	f.StringSliceVar(&throttle, "fault-throttle", nil, "STREAM/SHARD_ID or STREAM/*: always throttle that shard")
	return cmd
}

func parseRates(specs []string) (map[string]float64, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	rates := make(map[string]float64, len(specs))
	for _, s := range specs {
		op, r, ok := strings.Cut(s, "=")
		rate, err := strconv.ParseFloat(r, 64)
		if !ok || op == "" || err != nil || rate < 0 || rate > 1 {
			return nil, fmt.Errorf("--fault-error-rate %q: want OPERATION=RATE with RATE in 0..1", s)
		}
		rates[op] = rate
	}
	return rates, nil
}
