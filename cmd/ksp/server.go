package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/store"
	"github.com/spf13/cobra"
)

func serverCmd() *cobra.Command {
	var (
		opts       server.Options
		limits     string
		logLevel   string
		errorRates []string
		throttle   []string
		dataDir    string
		inMemory   bool
		fsync      string
		fsyncEvery time.Duration
		recoverArg string
		auth       []string
		metricsOn  string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Kinesis-compatible server",
		Long: `Run ksp's Kinesis Data Streams-compatible server until interrupted.

It speaks the real wire protocol (JSON and CBOR, HTTP/1.1 and h2c, or HTTPS
with HTTP/2 through ALPN), so the AWS CLI, the AWS SDKs and the Java KCL work
against it unchanged.

Data is durable by default: streams and records are kept in --data-dir
(default $XDG_STATE_HOME/ksp, or ~/.local/state/ksp) and survive a restart
and a crash; with --fsync always (the default) an acknowledged record
survives kill -9 and power loss. --in-memory keeps nothing.

--auth KEY:SECRET makes the server verify AWS SigV4 signatures made with that
access key; without it any credentials are accepted.

Metrics named after CloudWatch's AWS/Kinesis ones, per stream and per shard,
are at GET /metrics (Prometheus) and GET /ksp/metrics (JSON) on the API port,
and also on --metrics-addr when given (docs/metrics.md).`,
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
			if err := opts.Faults.Validate(); err != nil {
				return usageError{err}
			}
			for _, a := range auth {
				id, secret, ok := strings.Cut(a, ":")
				if !ok || id == "" || secret == "" {
					return usageError{fmt.Errorf("--auth %q: want ACCESS_KEY_ID:SECRET_ACCESS_KEY", a)}
				}
				if opts.Credentials == nil {
					opts.Credentials = map[string]string{}
				}
				opts.Credentials[id] = secret
			}
			if err := opts.Validate(); err != nil {
				return usageError{err}
			}
			storage := "in memory (nothing is kept)"
			if inMemory {
				if cmd.Flags().Changed("data-dir") || cmd.Flags().Changed("fsync") || cmd.Flags().Changed("recover") {
					return usageError{errors.New("--in-memory excludes --data-dir, --fsync and --recover")}
				}
			} else {
				policy, err := store.ParseFsyncPolicy(fsync)
				if err != nil {
					return usageError{fmt.Errorf("--fsync %q: want always, interval or never", fsync)}
				}
				mode, err := store.ParseRecoverMode(recoverArg)
				if err != nil {
					return usageError{fmt.Errorf("--recover %q: want refuse or truncate-and-keep-copy", recoverArg)}
				}
				if dataDir == "" {
					if dataDir, err = defaultDataDir(); err != nil {
						return err
					}
				}
				disk, err := store.OpenDisk(dataDir, store.DiskOptions{Fsync: policy, FsyncInterval: fsyncEvery, Recover: mode, Logger: opts.Logger})
				if err != nil {
					return err
				}
				opts.Store = disk
				storage = fmt.Sprintf("data dir %s, fsync %s", dataDir, policy)
			}
			srv, err := server.New(opts)
			if err != nil {
				if opts.Store != nil {
					opts.Store.Close()
				}
				return err
			}
			if err := srv.Start(); err != nil {
				srv.Close()
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ksp Kinesis server listening on %s (region %s, account %s, limits %s)\n", srv.URL(), srv.Region(), srv.Account(), limits)
			fmt.Fprintf(out, "  storage: %s\n", storage)
			fmt.Fprintf(out, "  metrics: %s%s (Prometheus), %s%s (JSON)\n", srv.URL(), server.PrometheusPath, srv.URL(), metrics.Path)
			if metricsOn != "" {
				url, stop, err := serveMetrics(metricsOn, srv)
				if err != nil {
					srv.Close()
					return err
				}
				defer stop()
				fmt.Fprintf(out, "  metrics: %s%s (Prometheus), %s%s (JSON)\n", url, server.PrometheusPath, url, metrics.Path)
			}
			caFile, err := printClientHints(out, srv, opts, auth)
			if err != nil {
				srv.Close()
				return err
			}
			if caFile != "" {
				defer os.Remove(caFile)
			}
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
	f.StringVar(&dataDir, "data-dir", "", "directory of the durable store (default $XDG_STATE_HOME/ksp or ~/.local/state/ksp)")
	f.BoolVar(&inMemory, "in-memory", false, "keep everything in memory: nothing survives the process")
	f.StringVar(&fsync, "fsync", "always", "when records reach stable storage: always (before each acknowledgement), interval, or never")
	f.DurationVar(&fsyncEvery, "fsync-interval", 50*time.Millisecond, "sync period of --fsync interval")
	f.StringVar(&recoverArg, "recover", "refuse", "what start-up does with corruption in a shard log: refuse (start fails, nothing changed) or truncate-and-keep-copy (damaged segment copied aside, log continues past every lost position)")
	f.DurationVar(&opts.RetentionInterval, "retention-interval", time.Minute, "how often records past their stream's retention are trimmed")
	f.StringVar(&metricsOn, "metrics-addr", "", "also serve the metrics (GET /metrics for Prometheus, /ksp/metrics as JSON) on this address, e.g. :9090; they are always on the API port too")
	f.StringArrayVar(&auth, "auth", nil, "ACCESS_KEY_ID:SECRET: verify SigV4 signatures made with this key (repeatable)")
	f.StringVar(&opts.TLSCertFile, "tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	f.StringVar(&opts.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.BoolVar(&opts.TLSSelfSigned, "tls", false, "serve HTTPS with a generated self-signed certificate for 127.0.0.1 and localhost")
	f.IntVar(&opts.MaxConcurrentRequests, "max-concurrent-requests", 256, "requests served at once, counted once their body has arrived; more get 503 ServiceUnavailable (negative: no cap)")
	f.Int64Var(&opts.MaxBodyBytes, "max-body-bytes", 16<<20, "largest request body; larger ones get 413 RequestEntityTooLargeException")
	f.Int64Var(&opts.MaxBodyBytesInFlight, "max-body-bytes-in-flight", 256<<20, "request body bytes held at once; past it 503 ServiceUnavailable (a quarter is kept for bodies up to 1 MiB; negative: no cap)")
	f.DurationVar(&opts.BodyTimeout, "body-timeout", 10*time.Second, "longest stall of a request body, and the time before --min-body-rate applies; slower bodies get 408 and the connection closes")
	f.Int64Var(&opts.MinBodyRate, "min-body-rate", 64<<10, "slowest average rate of a request body in bytes/s, after --body-timeout (negative: no minimum)")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", 2*time.Minute, "close keep-alive connections idle this long (negative: never)")
	f.Uint32Var(&opts.HTTP2MaxConcurrentStreams, "http2-max-streams", 100, "requests open at once on one HTTP/2 connection")
	f.Int32Var(&opts.HTTP2StreamWindow, "http2-stream-window", 1<<20, "HTTP/2 flow-control window per stream, in bytes")
	f.Int32Var(&opts.HTTP2ConnWindow, "http2-conn-window", 4<<20, "HTTP/2 flow-control window per connection, in bytes")
	return cmd
}

// serveMetrics serves srv's metrics on addr until stop is called, and
// returns the URL they are at.
func serveMetrics(addr string, srv *server.Server) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln) // returns ErrServerClosed after Close
	}()
	return "http://" + ln.Addr().String(), func() { hs.Close(); <-done }, nil
}

// printClientHints prints how to reach srv with the AWS CLI and the SDKs. With
// a self-signed certificate it writes the certificate to a temporary file for
// --ca-bundle and returns its name; the caller removes it.
func printClientHints(out io.Writer, srv *server.Server, opts server.Options, auth []string) (caFile string, err error) {
	keyID, secret := "x", "x"
	if len(auth) > 0 {
		fmt.Fprintf(out, "  auth:    SigV4 signatures verified (%d access keys)\n", len(opts.Credentials))
		keyID, secret, _ = strings.Cut(auth[0], ":")
	}
	caFlag := ""
	if pem := srv.CertPEM(); opts.TLSSelfSigned && pem != nil {
		f, err := os.CreateTemp("", "ksp-server-cert-*.pem")
		if err != nil {
			return "", err
		}
		_, err = f.Write(pem)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
			return "", err
		}
		caFile = f.Name()
		fmt.Fprintf(out, "  tls:     self-signed certificate written to %s\n", caFile)
		caFlag = " --ca-bundle " + caFile
	}
	fmt.Fprintf(out, "  AWS CLI: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws --region %s --endpoint-url %s%s kinesis list-streams\n", keyID, secret, srv.Region(), srv.URL(), caFlag)
	fmt.Fprintf(out, "  SDKs:    set the endpoint (AWS_ENDPOINT_URL_KINESIS=%s) and any static credentials\n", srv.URL())
	return caFile, nil
}

// defaultDataDir is $XDG_STATE_HOME/ksp, or ~/.local/state/ksp.
func defaultDataDir() (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --data-dir given and no home directory for the default: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	dir := filepath.Join(base, "ksp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
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
