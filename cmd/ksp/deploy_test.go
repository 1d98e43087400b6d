package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// writeTemplate runs ksp template with args and returns the file.
func writeTemplate(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	file := filepath.Join(dir, name+".yaml")
	var stderr strings.Builder
	if code := Run(context.Background(), append([]string{"template", "-o", file}, args...), io.Discard, &stderr); code != 0 {
		t.Fatalf("ksp template %v: exit %d: %s", args, code, stderr.String())
	}
	return file
}

func describe(t *testing.T, c *kinesis.Client, name string) string {
	t.Helper()
	d, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("describe %s: %v", name, err)
	}
	s := d.StreamDescriptionSummary
	cs, err := c.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: s.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range cs.Consumers {
		names = append(names, aws.ToString(x.ConsumerName))
	}
	sort.Strings(names)
	return strings.Join([]string{string(s.StreamModeDetails.StreamMode), itoa32(s.OpenShardCount), itoa32(s.RetentionPeriodHours),
		string(s.EncryptionType), aws.ToString(s.KeyId), strings.Join(names, ",")}, " ")
}

func itoa32(n *int32) string { return strconv.Itoa(int(aws.ToInt32(n))) }

// TestServerTemplateTwiceWithoutChange: ksp server --template, given the
// five kinds of template ksp template writes, creates exactly the declared
// streams and consumers; a restart on the same data directory with the
// same templates finds them and changes nothing.
func TestServerTemplateTwiceWithoutChange(t *testing.T) {
	dir := t.TempDir()
	var args []string
	for _, tc := range []struct{ name, flags string }{
		{"orders", "--app orders --shards 3 --retention-hours 48 --kcl"},
		{"clicks", "--app clicks --on-demand --fanout analytics --fanout audit --kcl"},
		{"events", "--app events --encryption none --lambda-function fn --lambda-role role --lambda-bisect --lambda-on-failure-queue"},
		{"payments", "--app payments --shards 2 --encryption customer-managed --kcl"},
		{"all", "--app all --stream all-events --shards 3 --retention-hours 168 --encryption customer-managed --kcl --fanout efo-one --fanout efo-two " +
			"--lambda-function f --lambda-role r --lambda-report-batch-item-failures --lambda-on-failure-queue --alarm-email ops@example.com"},
	} {
		args = append(args, "--template", writeTemplate(t, dir, tc.name, strings.Fields(tc.flags)...))
	}
	data := filepath.Join(dir, "data")
	want := map[string]string{
		"orders":     "PROVISIONED 3 48 KMS alias/aws/kinesis ",
		"clicks":     "ON_DEMAND 4 24 KMS alias/aws/kinesis analytics,audit",
		"events":     "PROVISIONED 1 24 NONE  ",
		"payments":   "PROVISIONED 2 24 KMS StreamKey.Arn ",
		"all-events": "PROVISIONED 3 168 KMS StreamKey.Arn efo-one,efo-two",
	}
	for i, action := range []string{"created", "unchanged"} {
		t.Run(action, func(t *testing.T) {
			out := runServer(t, append([]string{"--data-dir", data}, args...)...)
			if n := strings.Count(out, " "+action+"\n"); n != 9 {
				t.Fatalf("run %d: %d resources %s, want 9 (5 streams, 4 consumers):\n%s", i+1, n, action, out)
			}
			if !strings.Contains(out, "AWS::DynamoDB::Table") || !strings.Contains(out, "AWS::Lambda::EventSourceMapping") {
				t.Fatalf("skipped resources are not listed:\n%s", out)
			}
			endpoint := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
			c := servertest.NewClient(endpoint[1], "us-east-1")
			ls, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ls.StreamNames) != len(want) {
				t.Fatalf("streams = %v, want %d", ls.StreamNames, len(want))
			}
			for name, w := range want {
				if got := describe(t, c, name); got != w {
					t.Errorf("%s = %q, want %q", name, got, w)
				}
			}
		})
	}
}

// TestServerTemplateBadInput: one line naming the resource and property,
// and the server does not start.
func TestServerTemplateBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("Resources:\n  S:\n    Type: AWS::Kinesis::Stream\n    Properties: {ShardCount: 0}\n"), 0o644)
	param := filepath.Join(dir, "param.yaml")
	os.WriteFile(param, []byte("Parameters:\n  N: {Type: String}\nResources:\n  S:\n    Type: AWS::Kinesis::Stream\n    Properties: {Name: !Ref N, ShardCount: 1}\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--template", bad}, "resource S (AWS::Kinesis::Stream) property ShardCount: 0 is out of range 1..100000"},
		{[]string{"--template", param}, "parameter N: no value given"},
		{[]string{"--template", param, "--parameter", "Other=1"}, "--parameter Other: no template declares it"},
		{[]string{"--template", filepath.Join(dir, "missing.yaml")}, "no such file"},
	} {
		var stdout, stderr strings.Builder
		code := Run(context.Background(), append([]string{"server", "--addr", "127.0.0.1:0", "--in-memory"}, tc.args...), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 || strings.Contains(stdout.String(), "listening") {
			t.Errorf("ksp server %v: exit %d, stderr %q, stdout %q; want one line with %q and no server", tc.args, code, stderr.String(), stdout.String(), tc.want)
		}
	}
}

// TestApplyCommand: ksp apply creates the template's resources at
// --endpoint, with a parameter, and a second run changes nothing.
func TestApplyCommand(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	file := writeTemplate(t, t.TempDir(), "app", "--app", "app", "--shards", "2", "--fanout", "efo")
	for _, action := range []string{"created", "unchanged"} {
		var stdout, stderr strings.Builder
		code := Run(context.Background(), []string{"apply", file, "--endpoint", srv.URL(), "--parameter", "StreamName=renamed"}, &stdout, &stderr)
		if code != 0 || strings.Count(stdout.String(), " "+action+"\n") != 2 {
			t.Fatalf("ksp apply: exit %d, stdout:\n%s\nstderr: %s; want 2 resources %s", code, stdout.String(), stderr.String(), action)
		}
	}
	if got := describe(t, servertest.Client(t, srv), "renamed"); got != "PROVISIONED 2 24 KMS alias/aws/kinesis efo" {
		t.Fatalf("renamed = %q", got)
	}
}

// TestTemplateConfigFile: settings from --config, flags win, unknown keys
// are refused.
func TestTemplateConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "app.yaml")
	os.WriteFile(cfg, []byte("app: fromfile\nshards: 2\nretentionHours: 72\nlambda:\n  functionName: fn\n  roleName: role\n  onFailureQueue: true\n"), 0o644)
	var out strings.Builder
	if code := Run(context.Background(), []string{"template", "--config", cfg, "--shards", "5"}, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"ShardCount: 5", "RetentionPeriodHours: 72", "Default: fn", "QueueName: fromfile-on-failure", "MaximumRetryAttempts: 3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("template lacks %q", want)
		}
	}
	os.WriteFile(cfg, []byte("app: x\nshard: 2\n"), 0o644)
	var stderr strings.Builder
	if code := Run(context.Background(), []string{"template", "--config", cfg}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "field shard not found") {
		t.Fatalf("unknown key: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Run(context.Background(), []string{"template", "--app", "x", "--retention-hours", "10"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "retentionHours 10: out of range 24..8760") {
		t.Fatalf("bad retention: exit %d, %q", code, stderr.String())
	}
}
