package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/replicate"
	"github.com/spf13/cobra"
)

func replicateCmd() *cobra.Command {
	var (
		from, to                      awsFlags
		fromStream, toStream          string
		leaseDB, leaseTable, leaseURL string
		workerID, start               string
		maxInFlight                   int
		aggregate                     bool
		count                         int64
		statsEvery                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replicate --from STREAM --to STREAM",
		Short: "Copy a stream into another one (another region, account or server), at least once, in per-key order",
		Long: `Replicate --from STREAM (with --region, --endpoint, --profile) into --to
STREAM (with --to-region, --to-endpoint, --to-profile): a consumer application
that forwards every record through ksp's producer with its partition key
(and explicit hash key, where the source shows one), and checkpoints a
source record only after the destination acknowledged it. Resharding on
either side is followed; each key's records keep their order.

The checkpoints go to --lease-db (a SQLite file; the replicators of one host
share it) or --lease-table (a DynamoDB table in the source's account and
region, or at --lease-endpoint). Several processes with the same lease table
split the source's shards. After a crash the next owner of a shard sends
again at most about 2 × --max-in-flight records of it.

Prints a status line every --stats-every: records replicated, the rate, and
the replication lag (source arrival to destination acknowledgement) p50 and
p99. --count N stops after N records.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromStream == "" || toStream == "" {
				return usageError{errors.New("give both --from STREAM and --to STREAM")}
			}
			if fromStream == toStream && from.endpoint == to.endpoint && from.region == to.region && from.profile == to.profile {
				return usageError{fmt.Errorf("--from %s and --to %s are the same stream: give --to-region, --to-endpoint or --to-profile", fromStream, toStream)}
			}
			if (leaseDB == "") == (leaseTable == "") {
				return usageError{errors.New("give one of --lease-db FILE (SQLite) or --lease-table NAME (DynamoDB) for the checkpoints")}
			}
			if maxInFlight < 1 {
				return usageError{fmt.Errorf("--max-in-flight %d must be at least 1", maxInFlight)}
			}
			if count < 0 || statsEvery < 0 {
				return usageError{fmt.Errorf("--count %d and --stats-every %v must not be negative", count, statsEvery)}
			}
			pos, err := initialPosition(start)
			if err != nil {
				return err
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			srcCfg, srcEndpoint, err := from.config(ctx)
			if err != nil {
				return err
			}
			defer from.done()
			dstCfg, dstEndpoint, err := to.config(ctx)
			if err != nil {
				return fmt.Errorf("destination: %w", err)
			}
			defer to.done()
			store, err := replicateLeases(ctx, srcCfg, fromStream, leaseDB, leaseTable, leaseURL)
			if err != nil {
				return err
			}
			if c, ok := store.(io.Closer); ok {
				defer c.Close()
			}
			lag := &replicate.LagStats{}
			stopAt := &stopAfter{n: count, stop: stop}
			copts := []consumer.Option{consumer.WithInitialPosition(pos)}
			if workerID != "" {
				copts = append(copts, consumer.WithWorkerID(workerID))
			}
			done, printed := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(printed)
				printReplication(cmd.OutOrStdout(), lag, statsEvery, done)
			}()

			err = replicate.Run(ctx, replicate.Config{
				From: fromStream, Source: kinesisFrom(srcCfg, srcEndpoint), Leases: store,
				To: toStream, Destination: kinesisFrom(dstCfg, dstEndpoint),
				MaxInFlight:     maxInFlight,
				ConsumerOptions: copts,
				ProducerOptions: []producer.Option{producer.Aggregation(aggregate)},
				Hooks:           []replicate.Hook{lag, stopAt},
			})
			close(done)
			<-printed // the status lines end before the summary
			fmt.Fprintf(cmd.OutOrStdout(), "replicated %d records, lag p50 %v p99 %v\n", lag.Count(), lag.Quantile(0.5), lag.Quantile(0.99))
			return from.explain(err)
		},
	}
	from.register(cmd)
	to.registerAs(cmd, "to-", "destination")
	f := cmd.Flags()
	f.StringVar(&fromStream, "from", "", "the source stream (required)")
	f.StringVar(&toStream, "to", "", "the destination stream (required)")
	f.StringVar(&leaseDB, "lease-db", "", "SQLite file for the checkpoints")
	f.StringVar(&leaseTable, "lease-table", "", "DynamoDB table for the checkpoints (the application's name)")
	f.StringVar(&leaseURL, "lease-endpoint", "", "DynamoDB endpoint URL for --lease-table (default: AWS's)")
	f.StringVar(&workerID, "worker-id", "", "this worker's id in the lease table (default: host name and a random suffix)")
	f.StringVar(&start, "start", "trim-horizon", "where a source shard without a checkpoint starts: trim-horizon or latest")
	f.IntVar(&maxInFlight, "max-in-flight", replicate.DefaultMaxInFlight, "records of one source shard sent and not yet acknowledged")
	f.BoolVar(&aggregate, "aggregate", true, "aggregate records at the destination (KPL format)")
	f.Int64Var(&count, "count", 0, "stop after this many records (0: never)")
	f.DurationVar(&statsEvery, "stats-every", 30*time.Second, "status line interval (0: none)")
	return cmd
}

func initialPosition(s string) (consumer.InitialPosition, error) {
	switch s {
	case "trim-horizon", "TRIM_HORIZON":
		return consumer.TrimHorizon(), nil
	case "latest", "LATEST":
		return consumer.Latest(), nil
	}
	return consumer.InitialPosition{}, usageError{fmt.Errorf("--start %q: want trim-horizon or latest", s)}
}

// replicateLeases opens the lease table: a SQLite file, or DynamoDB.
func replicateLeases(ctx context.Context, cfg aws.Config, app, path, table, endpoint string) (lease.Store, error) {
	if path != "" {
		s, err := sqlite.Open(ctx, path, "ksp-replicate-"+app)
		if err != nil {
			return nil, fmt.Errorf("--lease-db %s: %w", path, err)
		}
		return s, nil
	}
	s, err := dynamo.New(dynamoFrom(cfg, endpoint), table)
	if err != nil {
		return nil, fmt.Errorf("--lease-table %s: %w", table, err)
	}
	return s, nil
}

// stopAfter ends the run once n records were replicated (n 0: never).
type stopAfter struct {
	n    int64
	seen atomic.Int64
	stop context.CancelFunc
}

func (s *stopAfter) OnReplicationLag(string, time.Duration) {
	if s.n > 0 && s.seen.Add(1) == s.n {
		s.stop()
	}
}

// printReplication prints a status line every interval until done closes.
func printReplication(w io.Writer, lag *replicate.LagStats, every time.Duration, done <-chan struct{}) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last := int64(0)
	for {
		select {
		case <-done:
			return
		case <-t.C:
			n := lag.Count()
			fmt.Fprintf(w, "replicated %d records (%.0f/s), lag p50 %v p99 %v\n", n, float64(n-last)/every.Seconds(), lag.Quantile(0.5), lag.Quantile(0.99))
			last = n
		}
	}
}
