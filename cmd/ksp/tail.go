package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/internal/follow"
	"github.com/ksp-project/ksp/kds"
	"github.com/spf13/cobra"
)

func tailCmd() *cobra.Command {
	var (
		a                    awsFlags
		opts                 follow.Options
		from, output, format string
		since                time.Duration
		grep, key            string
		count                int
	)
	cmd := &cobra.Command{
		Use:   "tail STREAM",
		Short: "Follow every shard of a stream, like tail -f",
		Long: `Print the records of STREAM as they arrive, from every shard, across
splits and merges (a parent shard is read to its end before its children),
with KPL aggregates taken apart. It holds no lease and writes nothing.

Start with --from latest (the default), trim-horizon, an RFC 3339 timestamp
or a sequence number (with --shard), or with --since 10m. --output raw
prints each record's data on a line, json one JSON object per record (shard,
sequence, subSequence, partitionKey, arrival, data), and --format a Go
template over the same fields (.Data is a string). --grep keeps records whose
data matches a regular expression, --key those with a partition key.
--count N stops after N records, --until-idle D once nothing arrived for D.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Stream = args[0]
			pos, err := parseFrom(from, since)
			if err != nil {
				return err
			}
			opts.From = pos
			var match *regexp.Regexp
			if grep != "" {
				if match, err = regexp.Compile(grep); err != nil {
					return usageError{fmt.Errorf("--grep %q: %v", grep, err)}
				}
			}
			print, err := recordPrinter(cmd.OutOrStdout(), output, format)
			if err != nil {
				return err
			}
			if count < 0 {
				return usageError{fmt.Errorf("--count %d is negative", count)}
			}
			ctx := cmd.Context()
			client, err := a.kinesisClient(ctx)
			if err != nil {
				return err
			}
			defer a.done()
			n := 0
			err = follow.Run(ctx, client, opts, func(r follow.Record) error {
				if (key != "" && r.PartitionKey != key) || (match != nil && !match.Match(r.Data)) {
					return nil
				}
				if err := print(r); err != nil {
					return err
				}
				if n++; count > 0 && n >= count {
					return follow.ErrStop
				}
				return nil
			})
			return a.explain(err)
		},
	}
	a.register(cmd)
	f := cmd.Flags()
	f.StringVar(&from, "from", "latest", "start: latest, trim-horizon, an RFC 3339 timestamp, or a sequence number (with --shard)")
	f.DurationVar(&since, "since", 0, "start this long ago (AT_TIMESTAMP)")
	f.StringVar(&opts.Shard, "shard", "", "follow only this shard and its descendants")
	f.StringVarP(&output, "output", "o", "raw", "raw (the data) or json (one object per record)")
	f.StringVar(&format, "format", "", `Go template per record, e.g. '{{.Shard}} {{.PartitionKey}} {{.Data}}'`)
	f.StringVar(&grep, "grep", "", "only records whose data matches this regular expression")
	f.StringVar(&key, "key", "", "only records with this partition key")
	f.IntVar(&count, "count", 0, "stop after this many records (0: never)")
	f.DurationVar(&opts.UntilIdle, "until-idle", 0, "stop once no record arrived for this long (0: never)")
	f.DurationVar(&opts.Poll, "poll", time.Second, "wait between reads of a shard that is at its tip")
	return cmd
}

// parseFrom turns --from and --since into a starting position.
func parseFrom(from string, since time.Duration) (follow.Position, error) {
	if since < 0 {
		return follow.Position{}, usageError{fmt.Errorf("--since %v is negative", since)}
	}
	if since > 0 {
		if from != "latest" {
			return follow.Position{}, usageError{fmt.Errorf("give --since or --from, not both")}
		}
		return follow.Position{Type: types.ShardIteratorTypeAtTimestamp, Time: time.Now().Add(-since)}, nil
	}
	switch strings.ToLower(strings.ReplaceAll(from, "_", "-")) {
	case "latest":
		return follow.Position{Type: types.ShardIteratorTypeLatest}, nil
	case "trim-horizon":
		return follow.Position{Type: types.ShardIteratorTypeTrimHorizon}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, from); err == nil {
		return follow.Position{Type: types.ShardIteratorTypeAtTimestamp, Time: t}, nil
	}
	if strings.Trim(from, "0123456789") == "" {
		if !kds.ValidSequenceNumber(from) {
			return follow.Position{}, fmt.Errorf("invalid sequence number %q", from)
		}
		return follow.Position{Type: types.ShardIteratorTypeAtSequenceNumber, Sequence: from}, nil
	}
	return follow.Position{}, usageError{fmt.Errorf("--from %q is not latest, trim-horizon, an RFC 3339 timestamp or a sequence number", from)}
}

// tailRecord is a record as --output json and --format see it.
type tailRecord struct {
	Shard        string    `json:"shard"`
	Sequence     string    `json:"sequence"`
	SubSequence  int64     `json:"subSequence"`
	PartitionKey string    `json:"partitionKey"`
	Arrival      time.Time `json:"arrival"`
	Data         string    `json:"data"`
	// DataBase64 replaces Data when the data is not UTF-8 text.
	DataBase64 string `json:"dataBase64,omitempty"`
}

func newTailRecord(r follow.Record) tailRecord {
	t := tailRecord{
		Shard: r.Shard, Sequence: r.SequenceNumber, SubSequence: r.SubSequenceNumber,
		PartitionKey: r.PartitionKey, Arrival: r.ApproximateArrivalTimestamp.UTC(),
	}
	if utf8.Valid(r.Data) {
		t.Data = string(r.Data)
	} else {
		t.DataBase64 = base64.StdEncoding.EncodeToString(r.Data)
	}
	return t
}

func recordPrinter(w io.Writer, output, format string) (func(follow.Record) error, error) {
	if format != "" {
		t, err := template.New("format").Parse(format)
		if err != nil {
			return nil, usageError{fmt.Errorf("--format: %v", err)}
		}
		return func(r follow.Record) error {
			if err := t.Execute(w, newTailRecord(r)); err != nil {
				return err
			}
			_, err := io.WriteString(w, "\n")
			return err
		}, nil
	}
	switch output {
	case "raw":
		return func(r follow.Record) error {
			_, err := fmt.Fprintf(w, "%s\n", r.Data)
			return err
		}, nil
	case "json":
		enc := json.NewEncoder(w)
		return func(r follow.Record) error { return enc.Encode(newTailRecord(r)) }, nil
	}
	return nil, usageError{fmt.Errorf("--output must be raw or json, not %q", output)}
}
