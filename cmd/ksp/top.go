package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/autoscale"
	"github.com/ksp-project/ksp/internal/leaseview"
	"github.com/ksp-project/ksp/internal/progress"
	"github.com/ksp-project/ksp/internal/top"
	"github.com/spf13/cobra"
)

func topCmd() *cobra.Command {
	var (
		l        leaseFlags
		app      string
		interval time.Duration
		count    int

		source, cwEndpoint, cwProtocol string
		cwSettle                       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "top [STREAM]",
		Short: "Live per-shard rates of a stream (or all): in and out, against the shard limits",
		Long: `Show, per shard of STREAM (or of every stream), the incoming records/s and
bytes/s against the shard write limits (1000 records/s, 1 MiB/s), outgoing
records/s, throttles (write: records refused; read: calls refused) and the
iterator age of the shard's latest read. In a terminal the view refreshes in
place every --interval; otherwise it prints a plain frame each time.
--count N stops after N frames.

Against a ksp server (--endpoint / KSP_ENDPOINT) the rates are the server's
counters (GET /ksp/metrics) between two refreshes. On AWS (or with --source
cloudwatch) they come from CloudWatch GetMetricData: the AWS/Kinesis
metrics' sums over the latest minute that ended at least --cloudwatch-settle
ago (CloudWatch fills a minute late), per second; per-shard rows
need enhanced (shard-level) monitoring on the stream and show 0 without it.

With --app (and --lease-db or --dynamodb-endpoint for the lease table) each
shard also shows the application's lease owner and how far its checkpoint
is behind (as ` + "`ksp leases`" + ` measures it).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("top takes at most one STREAM (usage: %s)", cmd.UseLine())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 || interval <= 0 {
				return usageError{fmt.Errorf("--count must be 0 or more and --interval positive (got %d, %v)", count, interval)}
			}
			var streams []string
			if len(args) == 1 {
				streams = args
			}
			if app != "" && len(streams) == 0 {
				return usageError{errors.New("--app needs a STREAM: the lease table does not say which stream it reads")}
			}
			ctx := cmd.Context()
			kc, err := l.kinesisClient(ctx)
			if err != nil {
				return err
			}
			defer l.aws.done()
			for _, s := range streams {
				if _, err := summary(ctx, kc, s); err != nil {
					return l.aws.explain(err)
				}
			}
			hc := &http.Client{Timeout: 10 * time.Second}
			defer hc.CloseIdleConnections()
			src, title, err := topSource(cmd, &l, kc, hc, streams, source, cwEndpoint, cwProtocol, cwSettle, interval)
			if err != nil {
				return err
			}
			var owners *leaseview.Source
			if app != "" {
				l.stream = streams[0]
				store, err := l.open(ctx, app)
				if err != nil {
					return err
				}
				defer store.Close()
				owners = &leaseview.Source{Store: store, Kinesis: kc, Stream: streams[0]}
			}
			out := cmd.OutOrStdout()
			live := progress.IsTerminal(out)
			for i := 0; count == 0 || i < count; i++ {
				if i > 0 {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(interval):
					}
				}
				rates, err := src.Rates(ctx)
				if ctx.Err() != nil {
					return nil
				}
				if err != nil {
					return l.aws.explain(err)
				}
				f := top.Frame{Rates: rates, Streams: streams, App: app, Source: title}
				if owners != nil {
					rows, err := owners.Snapshot(ctx)
					if err != nil {
						return l.aws.explain(err)
					}
					f.Owners = map[string]map[string]leaseview.Row{streams[0]: {}}
					for _, r := range rows {
						f.Owners[streams[0]][r.Shard] = r
					}
				}
				var b bytes.Buffer
				f.Write(&b)
				if live {
					progress.Redraw(out, b.String())
				} else {
					b.WriteString("\n")
					out.Write(b.Bytes())
				}
			}
			return nil
		},
	}
	l.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&app, "app", "", "consuming application (its lease table) whose owners and lag to show")
	f.DurationVar(&interval, "interval", 2*time.Second, "time between refreshes")
	f.IntVar(&count, "count", 0, "stop after this many frames (0: until interrupted)")
	f.StringVar(&source, "source", "auto", "where the rates come from: ksp (the server's /ksp/metrics), cloudwatch, or auto (ksp with --endpoint / KSP_ENDPOINT, else cloudwatch)")
	f.StringVar(&cwEndpoint, "cloudwatch-endpoint", "", "CloudWatch endpoint URL (default: AWS)")
	f.StringVar(&cwProtocol, "cloudwatch-protocol", "cbor", "CloudWatch wire protocol: cbor (the SDK's) or query (for emulators such as moto that lack CBOR)")
	f.DurationVar(&cwSettle, "cloudwatch-settle", time.Minute, "read only CloudWatch minutes that ended at least this long ago (CloudWatch publishes a minute's datapoints late)")
	return cmd
}

// topSource picks where top's rates come from, and its title.
func topSource(cmd *cobra.Command, l *leaseFlags, kc *kinesis.Client, hc *http.Client, streams []string, source, cwEndpoint, cwProtocol string, cwSettle, interval time.Duration) (top.Source, string, error) {
	ctx := cmd.Context()
	cfg, endpoint, err := l.config(ctx)
	if err != nil {
		return nil, "", err
	}
	if source == "auto" {
		source = "cloudwatch"
		if endpoint != "" {
			source = "ksp"
		}
	}
	switch source {
	case "ksp":
		if endpoint == "" {
			return nil, "", usageError{errors.New("--source ksp needs --endpoint or KSP_ENDPOINT")}
		}
		return &top.Server{HTTP: hc, Endpoint: endpoint, Interval: interval}, endpoint, nil
	case "cloudwatch":
		var opts []func(*cloudwatch.Options)
		if cwEndpoint != "" {
			opts = append(opts, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(cwEndpoint) })
		}
		switch cwProtocol {
		case "cbor": // the SDK's default
		case "query":
			opts = append(opts, autoscale.QueryProtocol)
		default:
			return nil, "", usageError{fmt.Errorf("--cloudwatch-protocol must be cbor or query, not %q", cwProtocol)}
		}
		if len(streams) == 0 {
			p := kinesis.NewListStreamsPaginator(kc, &kinesis.ListStreamsInput{})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					return nil, "", l.aws.explain(err)
				}
				streams = append(streams, out.StreamNames...)
			}
		}
		return &top.CloudWatch{CW: cloudwatch.NewFromConfig(cfg, opts...), Kinesis: kc, Streams: streams, Settle: cwSettle},
			"CloudWatch AWS/Kinesis, per second over the latest settled minute", nil
	}
	return nil, "", usageError{fmt.Errorf("--source must be auto, ksp or cloudwatch, not %q", source)}
}
