package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ksp-project/ksp/internal/feed"
	"github.com/ksp-project/ksp/internal/progress"
	"github.com/ksp-project/ksp/producer"
	"github.com/spf13/cobra"
)

func putCmd() *cobra.Command {
	var (
		a                              awsFlags
		delim, key, keyTemplate, field string
		whole, aggregate               bool
		rate                           int
		onError                        string
	)
	cmd := &cobra.Command{
		Use:   "put STREAM [FILE...]",
		Short: "Put records from stdin or files, one per line, through the ksp producer",
		Long: `Put records from files (or stdin, or "-") into STREAM through ksp's
producer: one record per line (--delimiter for another separator, --whole
for one record per file), batched, aggregated in the KPL format unless
--aggregate=false, and kept within the shard limits (--rate-limit).

The partition key is random unless one of --key (a fixed value),
--key-template (a Go template over .Source, .Line and .Data) or
--key-field (a field of each line's JSON object, "user.id" for a nested one)
is given. A line whose key cannot be made is reported with its line number;
--on-error fail (the default) then puts nothing, --on-error skip skips it.

Prints a summary: records put, Kinesis records, retries, failures.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usageError{errors.New("put needs a STREAM (usage: " + cmd.UseLine() + ")")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := feed.Options{Whole: whole, Warn: cmd.ErrOrStderr()}
			if delim != "" {
				d, err := strconv.Unquote(`"` + delim + `"`)
				if err != nil || d == "" {
					return usageError{fmt.Errorf("--delimiter %q is not a valid string (escapes such as \\n, \\t, \\x00 are allowed)", delim)}
				}
				opts.Delimiter = d
			}
			switch onError {
			case "fail":
			case "skip":
				opts.SkipBad = true
			default:
				return usageError{fmt.Errorf("--on-error must be skip or fail, not %q", onError)}
			}
			set := 0
			for _, s := range []string{key, keyTemplate, field} {
				if s != "" {
					set++
				}
			}
			if set > 1 {
				return usageError{errors.New("give at most one of --key, --key-template, --key-field")}
			}
			switch {
			case key != "":
				opts.Key = feed.Fixed(key)
			case keyTemplate != "":
				k, err := feed.Template(keyTemplate)
				if err != nil {
					return usageError{err}
				}
				opts.Key = k
			case field != "":
				opts.Key = feed.JSONField(field)
			}
			var inputs []feed.Input
			files := args[1:]
			if len(files) == 0 {
				files = []string{"-"}
			}
			for _, name := range files {
				if name == "-" {
					inputs = append(inputs, feed.Input{Name: "stdin", R: cmd.InOrStdin()})
					continue
				}
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				defer f.Close()
				inputs = append(inputs, feed.Input{Name: name, R: f})
			}
			ctx := cmd.Context()
			client, err := a.kinesisClient(ctx)
			if err != nil {
				return err
			}
			defer a.done()
			// The producer would retry a missing stream until RecordTTL.
			if _, err := summary(ctx, client, args[0]); err != nil {
				return a.explain(err)
			}
			p, err := producer.New(client, args[0], producer.Aggregation(aggregate), producer.RateLimit(rate))
			if err != nil {
				return a.explain(err)
			}
			// A large input shows its progress on stderr: live in a
			// terminal, a plain line every 10 s elsewhere.
			start := time.Now()
			line := progress.Start(cmd.ErrOrStderr(), func() string {
				st := p.Stats()
				return fmt.Sprintf("put: %d records in %d Kinesis records, %d retries (%.0fs)",
					st.UserRecordsPut, st.KinesisRecordsPut, st.Retries, time.Since(start).Seconds())
			}, progress.Options{})
			opts.Warn = line
			sum, err := feed.Put(ctx, p, inputs, opts)
			if cerr := p.Close(ctx); err == nil {
				err = cerr
			}
			line.Stop()
			var bad *feed.ItemError
			if errors.As(err, &bad) && !opts.SkipBad {
				return err // nothing was put
			}
			fmt.Fprintf(cmd.OutOrStdout(), "put %d records in %d Kinesis records to %s (%d retries, %d failed, %d skipped)\n",
				sum.Records, sum.KinesisRecords, args[0], sum.Retries, sum.Failed, sum.Skipped)
			return a.explain(err)
		},
	}
	a.register(cmd)
	f := cmd.Flags()
	f.StringVar(&delim, "delimiter", "", `record separator, with Go escapes (default "\n")`)
	f.BoolVar(&whole, "whole", false, "put each file as one record")
	f.StringVar(&key, "key", "", "fixed partition key")
	f.StringVar(&keyTemplate, "key-template", "", "partition key template, e.g. '{{.Source}}-{{.Line}}'")
	f.StringVar(&field, "key-field", "", "take the partition key from this field of each line's JSON object")
	f.BoolVar(&aggregate, "aggregate", true, "pack records into KPL aggregates")
	f.IntVar(&rate, "rate-limit", 150, "percent of each shard's write limit to send at (0: no limit)")
	f.StringVar(&onError, "on-error", "fail", "a line whose key cannot be made: fail (put nothing) or skip")
	return cmd
}
