package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/internal/follow"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/producer"
	"github.com/spf13/cobra"
)

// streamCLI holds the flags the stream subcommands share.
type streamCLI struct {
	aws         awsFlags
	json        bool
	noWait      bool
	waitTimeout time.Duration
}

func streamCmd() *cobra.Command {
	s := &streamCLI{}
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Create, list, describe, reshard and delete streams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("stream needs a subcommand: %s", subNames(cmd))}
		},
	}
	s.aws.register(cmd)
	pf := cmd.PersistentFlags()
	pf.BoolVar(&s.json, "json", false, "print JSON instead of a table")
	pf.BoolVar(&s.noWait, "no-wait", false, "return without waiting for the stream to become ACTIVE")
	pf.DurationVar(&s.waitTimeout, "wait-timeout", 5*time.Minute, "how long to wait for ACTIVE")
	cmd.AddCommand(s.createCmd(), s.listCmd(), s.describeCmd(), s.deleteCmd(), s.scaleCmd(),
		s.splitCmd(), s.mergeCmd(), s.retentionCmd(), s.modeCmd())
	return cmd
}

func subNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		names = append(names, c.Name())
	}
	return strings.Join(names, ", ")
}

// run gives fn a client and turns its error into one line.
func (s *streamCLI) run(cmd *cobra.Command, fn func(ctx context.Context, c *kinesis.Client) error) error {
	c, err := s.aws.kinesisClient(cmd.Context())
	if err != nil {
		return err
	}
	defer s.aws.done()
	return s.aws.explain(fn(cmd.Context(), c))
}

// waitActive polls until the stream is ACTIVE, unless --no-wait.
func (s *streamCLI) waitActive(ctx context.Context, c *kinesis.Client, name string) error {
	if s.noWait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.waitTimeout)
	defer cancel()
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("stream %s did not become ACTIVE within %v (--wait-timeout)", name, s.waitTimeout)
			}
			return err
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s is still %s after %v (--wait-timeout)", name, out.StreamDescriptionSummary.StreamStatus, s.waitTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *streamCLI) createCmd() *cobra.Command {
	var (
		shards int32
		mode   string
	)
	cmd := &cobra.Command{
		Use:   "create STREAM",
		Short: "Create a stream and wait until it is ACTIVE",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMode(mode)
			if err != nil {
				return err
			}
			in := &kinesis.CreateStreamInput{StreamName: aws.String(args[0]), StreamModeDetails: &types.StreamModeDetails{StreamMode: m}}
			if m == types.StreamModeProvisioned {
				in.ShardCount = aws.Int32(shards)
			}
			return s.run(cmd, func(ctx context.Context, c *kinesis.Client) error {
				if _, err := c.CreateStream(ctx, in); err != nil {
					return err
				}
				if err := s.waitActive(ctx, c, args[0]); err != nil {
					return err
				}
				return s.printDescription(ctx, c, cmd.OutOrStdout(), args[0])
			})
		},
	}
	cmd.Flags().Int32Var(&shards, "shards", 1, "shard count (provisioned mode)")
	cmd.Flags().StringVar(&mode, "mode", "provisioned", "capacity mode: provisioned or on-demand")
	return cmd
}

func parseMode(s string) (types.StreamMode, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "-")) {
	case "provisioned":
		return types.StreamModeProvisioned, nil
	case "on-demand", "ondemand":
		return types.StreamModeOnDemand, nil
	}
	return "", usageError{fmt.Errorf("mode must be provisioned or on-demand, not %q", s)}
}

func (s *streamCLI) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List streams with their status, mode and open shards",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return s.run(cmd, func(ctx context.Context, c *kinesis.Client) error {
				var names []string
				p := kinesis.NewListStreamsPaginator(c, &kinesis.ListStreamsInput{})
				for p.HasMorePages() {
					out, err := p.NextPage(ctx)
					if err != nil {
						return err
					}
					names = append(names, out.StreamNames...)
				}
				var rows []streamRow
				for _, n := range names {
					sum, err := summary(ctx, c, n)
					if err != nil {
						return err
					}
					rows = append(rows, summaryRow(sum))
				}
				w := cmd.OutOrStdout()
				if s.json {
					return writeJSON(w, rows)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "STREAM\tSTATUS\tMODE\tOPEN SHARDS\tRETENTION")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%dh\n", r.Name, r.Status, r.Mode, r.OpenShards, r.RetentionHours)
				}
				return tw.Flush()
			})
		},
	}
}

// streamRow is a stream as list and describe print it.
type streamRow struct {
	Name           string     `json:"name"`
	ARN            string     `json:"arn"`
	Status         string     `json:"status"`
	Mode           string     `json:"mode"`
	OpenShards     int32      `json:"openShards"`
	RetentionHours int32      `json:"retentionHours"`
	Created        string     `json:"created,omitempty"`
	Shards         []shardRow `json:"shards,omitempty"`
}

type shardRow struct {
	ID             string `json:"shardId"`
	State          string `json:"state"`
	Parent         string `json:"parentShardId,omitempty"`
	AdjacentParent string `json:"adjacentParentShardId,omitempty"`
	HashKeyStart   string `json:"startingHashKey"`
	HashKeyEnd     string `json:"endingHashKey"`
	FirstSequence  string `json:"startingSequenceNumber"`
	LastSequence   string `json:"endingSequenceNumber,omitempty"`
}

func summaryRow(d *types.StreamDescriptionSummary) streamRow {
	r := streamRow{
		Name: aws.ToString(d.StreamName), ARN: aws.ToString(d.StreamARN), Status: string(d.StreamStatus),
		OpenShards: aws.ToInt32(d.OpenShardCount), RetentionHours: aws.ToInt32(d.RetentionPeriodHours),
		Mode: string(types.StreamModeProvisioned),
	}
	if d.StreamModeDetails != nil {
		r.Mode = string(d.StreamModeDetails.StreamMode)
	}
	if d.StreamCreationTimestamp != nil {
		r.Created = d.StreamCreationTimestamp.UTC().Format(time.RFC3339)
	}
	return r
}

func (s *streamCLI) describeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe STREAM",
		Short: "Show a stream and its shards: hash ranges, parents, open or closed",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.run(cmd, func(ctx context.Context, c *kinesis.Client) error {
				return s.printDescription(ctx, c, cmd.OutOrStdout(), args[0])
			})
		},
	}
}

func (s *streamCLI) printDescription(ctx context.Context, c *kinesis.Client, w io.Writer, name string) error {
	sum, err := summary(ctx, c, name)
	if err != nil {
		return err
	}
	row := summaryRow(sum)
	if row.Status != string(types.StreamStatusCreating) {
		shards, err := follow.Shards(ctx, c, name)
		if err != nil {
			return err
		}
		for _, sh := range shards {
			sr := shardRow{
				ID: aws.ToString(sh.ShardId), State: "open", Parent: aws.ToString(sh.ParentShardId),
				AdjacentParent: aws.ToString(sh.AdjacentParentShardId),
			}
			if hr := sh.HashKeyRange; hr != nil {
				sr.HashKeyStart, sr.HashKeyEnd = aws.ToString(hr.StartingHashKey), aws.ToString(hr.EndingHashKey)
			}
			if sq := sh.SequenceNumberRange; sq != nil {
				sr.FirstSequence, sr.LastSequence = aws.ToString(sq.StartingSequenceNumber), aws.ToString(sq.EndingSequenceNumber)
				if sq.EndingSequenceNumber != nil {
					sr.State = "closed"
				}
			}
			row.Shards = append(row.Shards, sr)
		}
	}
	if s.json {
		return writeJSON(w, row)
	}
	fmt.Fprintf(w, "Stream:       %s\nARN:          %s\nStatus:       %s\nMode:         %s\nRetention:    %dh\nOpen shards:  %d\n",
		row.Name, row.ARN, row.Status, row.Mode, row.RetentionHours, row.OpenShards)
	if len(row.Shards) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tSTATE\tPARENTS\tHASH KEY RANGE")
	for _, sr := range row.Shards {
		parents := strings.Trim(sr.Parent+","+sr.AdjacentParent, ",")
		if parents == "" {
			parents = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s…%s\n", sr.ID, sr.State, parents, sr.HashKeyStart, sr.HashKeyEnd)
	}
	return tw.Flush()
}

func (s *streamCLI) deleteCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete STREAM",
		Short: "Delete a stream",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.run(cmd, func(ctx context.Context, c *kinesis.Client) error {
				_, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(args[0]), EnforceConsumerDeletion: aws.Bool(force)})
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete even when the stream has registered consumers")
	return cmd
}

// then runs a change, waits for ACTIVE and prints the stream.
func (s *streamCLI) then(cmd *cobra.Command, name string, change func(ctx context.Context, c *kinesis.Client) error) error {
	return s.run(cmd, func(ctx context.Context, c *kinesis.Client) error {
		if err := change(ctx, c); err != nil {
			return err
		}
		if s.noWait {
			return nil
		}
		if err := s.waitActive(ctx, c, name); err != nil {
			return err
		}
		return s.printDescription(ctx, c, cmd.OutOrStdout(), name)
	})
}

func (s *streamCLI) scaleCmd() *cobra.Command {
	var shards int32
	cmd := &cobra.Command{
		Use:   "scale STREAM --shards N",
		Short: "Change the open shard count (uniform scaling)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if shards < 1 {
				return usageError{fmt.Errorf("--shards %d: give the target shard count, 1 or more", shards)}
			}
			return s.then(cmd, args[0], func(ctx context.Context, c *kinesis.Client) error {
				_, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
					StreamName: aws.String(args[0]), TargetShardCount: aws.Int32(shards), ScalingType: types.ScalingTypeUniformScaling,
				})
				return err
			})
		},
	}
	cmd.Flags().Int32Var(&shards, "shards", 0, "target open shard count")
	return cmd
}

func (s *streamCLI) splitCmd() *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "split STREAM SHARD",
		Short: "Split a shard in two (at the middle of its hash range unless --at)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.then(cmd, args[0], func(ctx context.Context, c *kinesis.Client) error {
				key := at
				if key == "" {
					var err error
					if key, err = midpoint(ctx, c, args[0], args[1]); err != nil {
						return err
					}
				}
				_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{
					StreamName: aws.String(args[0]), ShardToSplit: aws.String(args[1]), NewStartingHashKey: aws.String(key),
				})
				return err
			})
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "starting hash key of the second child (decimal)")
	return cmd
}

// midpoint is the hash key that splits a shard's range in two halves.
func midpoint(ctx context.Context, c *kinesis.Client, stream, shardID string) (string, error) {
	shards, err := follow.Shards(ctx, c, stream)
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		if aws.ToString(sh.ShardId) != shardID || sh.HashKeyRange == nil {
			continue
		}
		start, err1 := kds.ParseHashKey(aws.ToString(sh.HashKeyRange.StartingHashKey))
		end, err2 := kds.ParseHashKey(aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err1 != nil || err2 != nil {
			return "", fmt.Errorf("shard %s has an invalid hash key range", shardID)
		}
		// The second child starts one past the middle, so each half is non-empty.
		mid, _ := kds.ParseHashKey(producer.Midpoint(kds.HashKeyRange{Start: start, End: end}))
		return mid.Add(kds.HashKey{Lo: 1}).String(), nil
	}
	return "", fmt.Errorf("stream %s has no shard %s", stream, shardID)
}

func (s *streamCLI) mergeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "merge STREAM SHARD ADJACENT_SHARD",
		Short: "Merge two adjacent shards into one",
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.then(cmd, args[0], func(ctx context.Context, c *kinesis.Client) error {
				_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{
					StreamName: aws.String(args[0]), ShardToMerge: aws.String(args[1]), AdjacentShardToMerge: aws.String(args[2]),
				})
				return err
			})
		},
	}
}

func (s *streamCLI) retentionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "retention STREAM HOURS",
		Short: "Set the retention period in hours (24…8760)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			hours, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil {
				return usageError{fmt.Errorf("HOURS %q is not a whole number of hours", args[1])}
			}
			return s.then(cmd, args[0], func(ctx context.Context, c *kinesis.Client) error {
				sum, err := summary(ctx, c, args[0])
				if err != nil {
					return err
				}
				cur := int64(aws.ToInt32(sum.RetentionPeriodHours))
				switch {
				case hours > cur:
					_, err = c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(args[0]), RetentionPeriodHours: aws.Int32(int32(hours))})
				case hours < cur:
					_, err = c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String(args[0]), RetentionPeriodHours: aws.Int32(int32(hours))})
				}
				return err
			})
		},
	}
}

func (s *streamCLI) modeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mode STREAM provisioned|on-demand",
		Short: "Switch the capacity mode",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseMode(args[1])
			if err != nil {
				return err
			}
			return s.then(cmd, args[0], func(ctx context.Context, c *kinesis.Client) error {
				sum, err := summary(ctx, c, args[0])
				if err != nil {
					return err
				}
				_, err = c.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{
					StreamARN: sum.StreamARN, StreamModeDetails: &types.StreamModeDetails{StreamMode: m},
				})
				return err
			})
		},
	}
}

func summary(ctx context.Context, c *kinesis.Client, name string) (*types.StreamDescriptionSummary, error) {
	out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		return nil, err
	}
	return out.StreamDescriptionSummary, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs as a usage error (exit 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s: want %d argument(s), got %d (usage: %s)", cmd.CommandPath(), n, len(args), cmd.UseLine())}
		}
		return nil
	}
}
