package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/internal/leaseview"
	"github.com/ksp-project/ksp/internal/progress"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/spf13/cobra"
)

// leaseFlags select an application's lease table: --lease-db for a SQLite
// file, else DynamoDB (--dynamodb-endpoint, or AWS's), with the table named
// after the application as the KCL names it.
type leaseFlags struct {
	aws             awsFlags
	db, dynEndpoint string
	stream          string

	// The AWS configuration, loaded once for DynamoDB and Kinesis.
	cfg      *aws.Config
	endpoint string // Kinesis's
}

// config loads the AWS configuration once.
func (l *leaseFlags) config(ctx context.Context) (aws.Config, string, error) {
	if l.cfg == nil {
		cfg, endpoint, err := l.aws.config(ctx)
		if err != nil {
			return aws.Config{}, "", err
		}
		l.cfg, l.endpoint = &cfg, endpoint
	}
	return *l.cfg, l.endpoint, nil
}

// kinesisClient is the Kinesis client of the configuration.
func (l *leaseFlags) kinesisClient(ctx context.Context) (*kinesis.Client, error) {
	cfg, endpoint, err := l.config(ctx)
	if err != nil {
		return nil, err
	}
	return kinesisFrom(cfg, endpoint), nil
}

// register adds the flags; withStream adds --stream, for commands whose
// stream is not an argument.
func (l *leaseFlags) register(cmd *cobra.Command, withStream bool) {
	l.aws.register(cmd)
	f := cmd.PersistentFlags()
	f.StringVar(&l.db, "lease-db", "", "SQLite lease file (default: the DynamoDB table named after the application)")
	f.StringVar(&l.dynEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint URL for the lease table, e.g. a local DynamoDB (default: AWS)")
	if withStream {
		f.StringVar(&l.stream, "stream", "", "the application's stream: shows each checkpoint's lag and checks --to sequence numbers")
	}
}

// open opens app's lease table and checks that it exists, so a misspelt
// application is one line rather than an empty table (and a missing
// --lease-db file is not created).
func (l *leaseFlags) open(ctx context.Context, app string) (lease.Store, error) {
	var (
		s     lease.Store
		where string
	)
	if l.db != "" {
		if _, err := os.Stat(l.db); err != nil {
			return nil, fmt.Errorf("--lease-db %s: %w", l.db, errors.Unwrap(err))
		}
		st, err := sqlite.Open(ctx, l.db, app)
		if err != nil {
			return nil, fmt.Errorf("--lease-db %s: %w", l.db, err)
		}
		s, where = st, "in "+l.db
	} else {
		cfg, _, err := l.config(ctx)
		if err != nil {
			return nil, err
		}
		st, err := dynamo.New(dynamoFrom(cfg, l.dynEndpoint), app, dynamo.WithConsistentReads(true))
		if err != nil {
			return nil, err
		}
		s, where = st, "in DynamoDB"
		if l.dynEndpoint != "" {
			where += " at " + l.dynEndpoint
		}
	}
	ok, err := s.TableExists(ctx)
	if err == nil && !ok {
		err = fmt.Errorf("application %s has no lease table %s (the table is named after the application)", app, where)
	}
	if err != nil {
		s.Close()
		return nil, l.aws.explain(err)
	}
	return s, nil
}

// openAll opens app's lease table and, with --stream, a Kinesis client
// (nil without). Close the store and call l.aws.done when finished.
func (l *leaseFlags) openAll(ctx context.Context, app string) (lease.Store, *kinesis.Client, error) {
	store, err := l.open(ctx, app)
	if err != nil || l.stream == "" {
		return store, nil, err
	}
	kc, err := l.kinesisClient(ctx)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, kc, nil
}

func leasesCmd() *cobra.Command {
	var (
		l        leaseFlags
		asJSON   bool
		watch    bool
		interval time.Duration
		count    int
		lagLimit int
	)
	cmd := &cobra.Command{
		Use:   "leases APP",
		Short: "Show an application's lease table: owners, checkpoints, lag",
		Long: `Show the lease table of the consumer application APP (a ksp consumer's or a
Java KCL application's): for each shard its owner, checkpoint (with the
sub-sequence number inside a KPL aggregate), parents and lease counter.

The table is the DynamoDB table APP (--dynamodb-endpoint for a local one),
or the table APP in the SQLite file --lease-db.

With --stream, BEHIND is the checkpoint's lag: the Kinesis records after it,
read with one GetRecords call per shard (up to --lag-limit, "+" when more
follow) and the age of the oldest of them (how far behind the application
is). A throttled read shows "?".

The lease table holds no time: the KCL's heartbeat is the counter. RENEWED
is when this command saw the counter change, so it says something only with
--watch, which refreshes every --interval (--count N: N times, then exit).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 || interval <= 0 {
				return usageError{fmt.Errorf("--count must be 0 or more and --interval positive (got %d, %v)", count, interval)}
			}
			watch = watch || count > 0
			ctx := cmd.Context()
			store, kc, err := l.openAll(ctx, args[0])
			if err != nil {
				return err
			}
			defer store.Close()
			defer l.aws.done()
			src := &leaseview.Source{Store: store, Stream: l.stream, LagLimit: lagLimit}
			if kc != nil {
				src.Kinesis = kc
			}
			out := cmd.OutOrStdout()
			live := watch && progress.IsTerminal(out)
			var ren leaseview.Renewals
			for i := 0; ; i++ {
				rows, err := src.Snapshot(ctx)
				if ctx.Err() != nil {
					return nil // interrupted
				}
				if errors.Is(err, leaseview.ErrNoTable) {
					return fmt.Errorf("application %s has no lease table", args[0])
				}
				if err != nil && !errors.Is(err, lease.ErrCorruptLease) {
					return l.aws.explain(err)
				}
				now := time.Now()
				ren.Observe(rows, now)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "ksp: warning:", err)
				}
				if err := printLeases(out, rows, asJSON, watch, live, now, &ren); err != nil {
					return err
				}
				if !watch || (count > 0 && i+1 >= count) {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	l.register(cmd, true)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON (with --watch: one line per refresh)")
	f.BoolVar(&watch, "watch", false, "refresh every --interval (in place in a terminal)")
	f.DurationVar(&interval, "interval", 2*time.Second, "time between refreshes with --watch")
	f.IntVar(&count, "count", 0, "refresh this many times, then exit (implies --watch; 0: until interrupted)")
	f.IntVar(&lagLimit, "lag-limit", 1000, "most records counted per shard for BEHIND")
	cmd.AddCommand(leasesResetCmd(&l))
	return cmd
}

// leasesJSON is one look at the table as --json prints it.
type leasesJSON struct {
	Time   time.Time       `json:"time"`
	Leases []leaseview.Row `json:"leases"`
}

func printLeases(w io.Writer, rows []leaseview.Row, asJSON, watch, live bool, now time.Time, ren *leaseview.Renewals) error {
	var b bytes.Buffer
	if asJSON {
		doc := leasesJSON{Time: now.UTC(), Leases: rows}
		if watch {
			if err := json.NewEncoder(&b).Encode(doc); err != nil {
				return err
			}
		} else if err := writeJSON(&b, doc); err != nil {
			return err
		}
	} else {
		if watch {
			fmt.Fprintf(&b, "%s  %d leases\n", now.Format("15:04:05"), len(rows))
		}
		if err := leaseview.WriteTable(&b, rows, ren); err != nil {
			return err
		}
		if watch && !live {
			b.WriteString("\n")
		}
	}
	if live && !asJSON {
		return progress.Redraw(w, b.String())
	}
	_, err := w.Write(b.Bytes())
	return err
}

func leasesResetCmd(l *leaseFlags) *cobra.Command {
	var (
		shard, to string
		o         leaseview.ResetOptions
	)
	cmd := &cobra.Command{
		Use:   "reset APP --shard ID --to TRIM_HORIZON|LATEST|SEQ",
		Short: "Set a shard's checkpoint (refuses while a live worker holds the lease)",
		Long: `Set the checkpoint of a shard's lease, so the worker that takes it next
resumes there: TRIM_HORIZON (the oldest record), LATEST (new records only),
or after the sequence number SEQ (checked against the shard with --stream).

Every write is conditional on the lease counter: the lease is taken from its
holder, the checkpoint written, and the lease let go, so a worker takes it
at once. If the holder renews the lease within --failover (the application's
failover time) it is alive and the reset is refused, unless --force: the
holder's next renewal then fails and it lets the shard go.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if shard == "" || to == "" {
				return usageError{errors.New("reset needs --shard and --to")}
			}
			cp, err := parseCheckpoint(to)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			store, kc, err := l.openAll(ctx, args[0])
			if err != nil {
				return err
			}
			defer store.Close()
			defer l.aws.done()
			if kc != nil && !cp.IsSentinel() {
				if err := checkSequence(ctx, kc, l.stream, shard, cp.SequenceNumber); err != nil {
					return l.aws.explain(err)
				}
			}
			before, after, err := leaseview.Reset(ctx, store, shard, cp, o)
			switch {
			case errors.Is(err, leaseview.ErrNoTable):
				return fmt.Errorf("application %s has no lease table", args[0])
			case errors.Is(err, leaseview.ErrLiveOwner):
				return fmt.Errorf("%v: stop it, or pass --force", err)
			case err != nil:
				return l.aws.explain(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: checkpoint %s → %s (owner was %s; counter %d → %d)\n",
				after.LeaseKey, dash(before.Checkpoint.String()), after.Checkpoint, dash(before.Holder()), before.LeaseCounter, after.LeaseCounter)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&shard, "shard", "", "the shard whose lease to reset (or its lease key)")
	f.StringVar(&to, "to", "", "TRIM_HORIZON, LATEST, or a sequence number to resume after")
	f.BoolVar(&o.Force, "force", false, "reset even while a live owner renews the lease")
	f.DurationVar(&o.Watch, "failover", 10*time.Second, "the application's failover time: how long to watch the lease for renewals")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseCheckpoint reads --to.
func parseCheckpoint(to string) (lease.Checkpoint, error) {
	switch strings.ToUpper(strings.ReplaceAll(to, "-", "_")) {
	case lease.SentinelTrimHorizon:
		return lease.TrimHorizon, nil
	case lease.SentinelLatest:
		return lease.Latest, nil
	}
	if !kds.ValidSequenceNumber(to) {
		return lease.Checkpoint{}, fmt.Errorf("invalid sequence number %q: want TRIM_HORIZON, LATEST or a decimal sequence number", to)
	}
	return lease.Checkpoint{SequenceNumber: to}, nil
}

// checkSequence asks Kinesis whether seq is a position in the shard.
func checkSequence(ctx context.Context, c *kinesis.Client, stream, shard, seq string) error {
	_, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seq),
	})
	return err
}
