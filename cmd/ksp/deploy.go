package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/deploy"
	"github.com/ksp-project/ksp/deploy/cfn"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func templateCmd() *cobra.Command {
	var (
		c          deploy.Config
		configFile string
		out        string
		encryption string
	)
	lambda := deploy.Lambda{}
	var maxRetries, maxAge int
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Write a production CloudFormation template for a Kinesis application",
		Long: `Write a CloudFormation template (YAML) for one Kinesis application: the
stream (provisioned or on-demand, retention, KMS encryption), enhanced fan-out
consumers, the KCL lease table, least-privilege IAM policies for a producer, a
KCL consumer and a Lambda consumer, an optional Lambda event source mapping
with an SQS on-failure queue, an SNS topic, CloudWatch alarms and a dashboard.

The iterator-age alarms fire at fractions of the retention period (warning
0.25, critical 0.5 by default): records older than the retention period are
gone, so a consumer must be alerted long before its iterator age reaches it.

Settings come from --config FILE (YAML; keys as in the deploy.Config docs:
app, streamName, onDemand, shards, retentionHours, encryption,
fanoutConsumers, kcl, leaseTable, alarmEmail, iteratorAgeWarning,
iteratorAgeCritical, lambda: {functionName, roleName, ...}); flags win.

The same template runs locally: ksp server --template FILE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				var fromFile deploy.Config
				b, err := os.ReadFile(configFile)
				if err != nil {
					return err
				}
				dec := yaml.NewDecoder(strings.NewReader(string(b)))
				dec.KnownFields(true)
				if err := dec.Decode(&fromFile); err != nil && !errors.Is(err, io.EOF) {
					return usageError{fmt.Errorf("--config %s: %v", configFile, err)}
				}
				mergeFlags(cmd, &fromFile, &c)
				c = fromFile
			}
			if cmd.Flags().Changed("encryption") {
				c.Encryption = encryption
			}
			if cmd.Flags().Changed("lambda-function") || c.Lambda != nil {
				if c.Lambda == nil {
					c.Lambda = &deploy.Lambda{}
				}
				mergeLambda(cmd, c.Lambda, &lambda, maxRetries, maxAge)
			}
			b, err := deploy.Generate(c)
			if err != nil {
				return usageError{err}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML file of the settings (flags win)")
	f.StringVarP(&out, "output", "o", "", "write the template to this file (default stdout)")
	f.StringVar(&c.App, "app", "", "application name: default stream and lease table name, prefix of the others (required)")
	f.StringVar(&c.StreamName, "stream", "", "stream name (default --app)")
	f.BoolVar(&c.OnDemand, "on-demand", false, "ON_DEMAND capacity instead of provisioned shards")
	f.IntVar(&c.Shards, "shards", 0, "shards of a provisioned stream (default 1)")
	f.IntVar(&c.RetentionHours, "retention-hours", 0, "retention period, 24..8760 (default 24)")
	f.StringVar(&encryption, "encryption", deploy.EncryptionAWSManaged, "none, aws-managed or customer-managed (a new KMS key)")
	f.StringSliceVar(&c.FanoutConsumers, "fanout", nil, "enhanced fan-out consumer names (repeatable)")
	f.BoolVar(&c.KCL, "kcl", false, "add the KCL lease table and the KCL consumer policy")
	f.StringVar(&c.LeaseTable, "lease-table", "", "lease table name (default --app)")
	f.StringVar(&c.AlarmEmail, "alarm-email", "", "address subscribed to the alarm topic")
	f.Float64Var(&c.IteratorAgeWarning, "iterator-age-warning", 0, "warning threshold as a fraction of retention (default 0.25)")
	f.Float64Var(&c.IteratorAgeCritical, "iterator-age-critical", 0, "critical threshold as a fraction of retention (default 0.5)")
	f.StringVar(&lambda.FunctionName, "lambda-function", "", "add a Lambda event source mapping to this function")
	f.StringVar(&lambda.RoleName, "lambda-role", "", "the function's execution role (the Lambda policy is attached to it)")
	f.StringVar(&lambda.StartingPosition, "lambda-starting-position", "", "LATEST (default) or TRIM_HORIZON")
	f.IntVar(&lambda.BatchSize, "lambda-batch-size", 0, "records per invocation, 1..10000 (default 100)")
	f.IntVar(&lambda.WindowSeconds, "lambda-window", 0, "batching window in seconds, 0..300")
	f.BoolVar(&lambda.Bisect, "lambda-bisect", false, "split a failing batch in two")
	f.BoolVar(&lambda.ReportBatchItemFailures, "lambda-report-batch-item-failures", false, "enable partial batch responses")
	f.IntVar(&maxRetries, "lambda-max-retries", 3, "retries of a failing batch: -1 (until expiry) or 0..10000")
	f.IntVar(&maxAge, "lambda-max-record-age", -1, "discard records older than this many seconds: -1 or 60..604800")
	f.IntVar(&lambda.Parallelization, "lambda-parallelization", 0, "batches in flight per shard, 1..10 (default 1)")
	f.BoolVar(&lambda.OnFailureQueue, "lambda-on-failure-queue", false, "send discarded batches' records to a new SQS queue")
	return cmd
}

// mergeFlags copies the flags given on the command line over the file's.
func mergeFlags(cmd *cobra.Command, dst, flags *deploy.Config) {
	override(cmd, "app", &dst.App, flags.App)
	override(cmd, "stream", &dst.StreamName, flags.StreamName)
	override(cmd, "on-demand", &dst.OnDemand, flags.OnDemand)
	override(cmd, "shards", &dst.Shards, flags.Shards)
	override(cmd, "retention-hours", &dst.RetentionHours, flags.RetentionHours)
	override(cmd, "fanout", &dst.FanoutConsumers, flags.FanoutConsumers)
	override(cmd, "kcl", &dst.KCL, flags.KCL)
	override(cmd, "lease-table", &dst.LeaseTable, flags.LeaseTable)
	override(cmd, "alarm-email", &dst.AlarmEmail, flags.AlarmEmail)
	override(cmd, "iterator-age-warning", &dst.IteratorAgeWarning, flags.IteratorAgeWarning)
	override(cmd, "iterator-age-critical", &dst.IteratorAgeCritical, flags.IteratorAgeCritical)
}

func mergeLambda(cmd *cobra.Command, dst, flags *deploy.Lambda, maxRetries, maxAge int) {
	override(cmd, "lambda-function", &dst.FunctionName, flags.FunctionName)
	override(cmd, "lambda-role", &dst.RoleName, flags.RoleName)
	override(cmd, "lambda-starting-position", &dst.StartingPosition, flags.StartingPosition)
	override(cmd, "lambda-batch-size", &dst.BatchSize, flags.BatchSize)
	override(cmd, "lambda-window", &dst.WindowSeconds, flags.WindowSeconds)
	override(cmd, "lambda-bisect", &dst.Bisect, flags.Bisect)
	override(cmd, "lambda-report-batch-item-failures", &dst.ReportBatchItemFailures, flags.ReportBatchItemFailures)
	set := cmd.Flags().Changed
	if set("lambda-max-retries") || dst.MaxRetries == nil {
		dst.MaxRetries = &maxRetries
	}
	if set("lambda-max-record-age") || dst.MaxRecordAgeSeconds == nil {
		dst.MaxRecordAgeSeconds = &maxAge
	}
	override(cmd, "lambda-parallelization", &dst.Parallelization, flags.Parallelization)
	override(cmd, "lambda-on-failure-queue", &dst.OnFailureQueue, flags.OnFailureQueue)
}

// override sets *dst to v when the flag was given.
func override[T any](cmd *cobra.Command, flag string, dst *T, v T) {
	if cmd.Flags().Changed(flag) {
		*dst = v
	}
}

// resolveTemplates reads and resolves every template before anything is
// created; a template's stack name is its file name without extension.
func resolveTemplates(files, params []string, region, account string) (*cfn.Plan, error) {
	values := map[string]string{}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--parameter %q: want NAME=VALUE", p)}
		}
		values[k] = v
	}
	var tpls []*cfn.Template
	declared := map[string]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		tpl, err := cfn.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, p := range tpl.Parameters {
			declared[p.Name] = true
		}
		tpls = append(tpls, tpl)
	}
	for k := range values {
		if !declared[k] {
			return nil, usageError{fmt.Errorf("--parameter %s: no template declares it", k)}
		}
	}
	var plans []*cfn.Plan
	for i, tpl := range tpls {
		// A parameter given on the command line goes to every template
		// that declares it.
		mine := map[string]string{}
		for _, p := range tpl.Parameters {
			if v, ok := values[p.Name]; ok {
				mine[p.Name] = v
			}
		}
		stack := strings.TrimSuffix(filepath.Base(files[i]), filepath.Ext(files[i]))
		plan, err := tpl.Resolve(cfn.Env{Region: region, Account: account, StackName: stack, Parameters: mine})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", files[i], err)
		}
		plans = append(plans, plan)
	}
	return deploy.MergePlans(plans...)
}

func printChanges(w io.Writer, plan *cfn.Plan, changes []deploy.Change) {
	for _, c := range changes {
		fmt.Fprintf(w, "  %s\n", c)
	}
	// Skipped resources, one line per reason: types counted, or the
	// logical IDs a false condition left out.
	var reasons []string
	byReason := map[string][]string{}
	for _, s := range plan.Skipped {
		if _, ok := byReason[s.Reason]; !ok {
			reasons = append(reasons, s.Reason)
		}
		item := s.Type
		if strings.HasPrefix(s.Reason, "condition") {
			item = s.LogicalID
		}
		byReason[s.Reason] = append(byReason[s.Reason], item)
	}
	for _, r := range reasons {
		items := byReason[r]
		sort.Strings(items)
		var parts []string
		for i := 0; i < len(items); {
			j := i
			for j < len(items) && items[j] == items[i] {
				j++
			}
			if n := j - i; n > 1 {
				parts = append(parts, fmt.Sprintf("%s ×%d", items[i], n))
			} else {
				parts = append(parts, items[i])
			}
			i = j
		}
		fmt.Fprintf(w, "  skipped (%s): %s\n", r, strings.Join(parts, ", "))
	}
}

func applyCmd() *cobra.Command {
	var (
		a       awsFlags
		params  []string
		account string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply TEMPLATE...",
		Short: "Create a CloudFormation template's Kinesis streams and consumers in an endpoint",
		Long: `Read CloudFormation templates (YAML or JSON) and create their
AWS::Kinesis::Stream and AWS::Kinesis::StreamConsumer resources through the
Kinesis API at --endpoint (a ksp server, another emulator, or AWS), idempotently:
existing streams are brought to the template's settings, and a second run
changes nothing. Every template is read and validated before anything is
created. Other resource types are listed as skipped.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			ctx := cmd.Context()
			cfg, endpoint, err := a.config(ctx)
			if err != nil {
				return err
			}
			defer a.done()
			plan, err := resolveTemplates(files, params, cfg.Region, account)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			changes, err := deploy.Apply(ctx, kinesisFrom(cfg, endpoint), plan, 0)
			printChanges(cmd.OutOrStdout(), plan, changes)
			return a.explain(err)
		},
	}
	a.register(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&params, "parameter", nil, "NAME=VALUE for a template parameter (repeatable)")
	f.StringVar(&account, "account", "000000000000", "account ID the templates' ARNs are resolved with")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for streams and consumers to become ACTIVE")
	return cmd
}

// applyToServer creates the plan's streams and consumers in srv through its
// own Kinesis API, as ksp apply would.
func applyToServer(ctx context.Context, srv *server.Server, plan *cfn.Plan, auth []string) ([]deploy.Change, error) {
	keyID, secret := "ksp", "ksp"
	if len(auth) > 0 {
		keyID, secret, _ = strings.Cut(auth[0], ":")
	}
	hc := &http.Client{}
	if pem := srv.CertPEM(); pem != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	defer hc.CloseIdleConnections()
	client := kinesis.New(kinesis.Options{
		Region:       srv.Region(),
		BaseEndpoint: aws.String(srv.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:   hc,
	}, sdkhttp.FixKinesis)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return deploy.Apply(ctx, client, plan, 20*time.Millisecond)
}
