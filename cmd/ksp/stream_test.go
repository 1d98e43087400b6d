package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// runKSP runs the CLI with args and returns its exit code and output.
func runKSP(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runKSP(t, args...)
	if code != 0 {
		t.Fatalf("ksp %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// startServer starts the embedded server with limits off and returns its
// endpoint; the CLI finds it through KSP_ENDPOINT.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	t.Setenv("KSP_ENDPOINT", srv.URL())
	return srv
}

func describeJSON(t *testing.T, stream string, flags ...string) streamRow {
	t.Helper()
	var row streamRow
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"stream", "describe", stream, "--json"}, flags...)...)), &row); err != nil {
		t.Fatal(err)
	}
	return row
}

func TestStreamCreateDescribeSplitMergeDelete(t *testing.T) {
	startServer(t)
	out := mustRun(t, "stream", "create", "orders", "--shards", "2")
	if !strings.Contains(out, "ACTIVE") || !strings.Contains(out, "shardId-000000000001") {
		t.Fatalf("create did not print the ACTIVE stream and its shards:\n%s", out)
	}
	if out := mustRun(t, "stream", "list"); !strings.Contains(out, "orders") || !strings.Contains(out, "ACTIVE") {
		t.Fatalf("list:\n%s", out)
	}

	mustRun(t, "stream", "split", "orders", "shardId-000000000000")
	row := describeJSON(t, "orders")
	if len(row.Shards) != 4 || row.OpenShards != 3 {
		t.Fatalf("after split: %d shards, %d open; want 4 and 3: %+v", len(row.Shards), row.OpenShards, row.Shards)
	}
	parent, a, b := row.Shards[0], row.Shards[2], row.Shards[3]
	if parent.State != "closed" || a.Parent != parent.ID || b.Parent != parent.ID || a.State != "open" {
		t.Fatalf("split children do not name their closed parent: %+v", row.Shards)
	}
	if a.HashKeyStart != parent.HashKeyStart || b.HashKeyEnd != parent.HashKeyEnd {
		t.Fatalf("children do not cover the parent's range: %+v", row.Shards)
	}

	out = mustRun(t, "stream", "merge", "orders", a.ID, b.ID)
	if !strings.Contains(out, a.ID+","+b.ID) {
		t.Fatalf("describe after merge does not show the merged shard's two parents:\n%s", out)
	}
	row = describeJSON(t, "orders")
	merged := row.Shards[len(row.Shards)-1]
	if merged.Parent != a.ID || merged.AdjacentParent != b.ID || merged.HashKeyStart != parent.HashKeyStart || merged.HashKeyEnd != parent.HashKeyEnd {
		t.Fatalf("merged shard: %+v", merged)
	}

	mustRun(t, "stream", "retention", "orders", "48")
	mustRun(t, "stream", "scale", "orders", "--shards", "4")
	if row := describeJSON(t, "orders"); row.RetentionHours != 48 || row.OpenShards != 4 {
		t.Fatalf("retention %d, open shards %d; want 48 and 4", row.RetentionHours, row.OpenShards)
	}

	mustRun(t, "stream", "mode", "orders", "on-demand")
	if row := describeJSON(t, "orders"); row.Mode != "ON_DEMAND" {
		t.Fatalf("mode %s; want ON_DEMAND", row.Mode)
	}

	mustRun(t, "stream", "delete", "orders")
	code, _, errOut := runKSP(t, "stream", "describe", "orders")
	if code != 1 || !strings.Contains(errOut, "ResourceNotFoundException") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("describe of a deleted stream: exit %d, %q; want 1 and one line naming ResourceNotFoundException", code, errOut)
	}
}

func TestStreamBadInput(t *testing.T) {
	startServer(t)
	checkBadInput(t, []badInput{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"stream", "frobnicate"}, 2, "unknown command"},
		{[]string{"stream"}, 2, "needs a subcommand"},
		{[]string{"stream", "list", "--colour"}, 2, "unknown flag"},
		{[]string{"stream", "describe"}, 2, "want 1 argument"},
		{[]string{"stream", "create", "x", "--mode", "sometimes"}, 2, "provisioned or on-demand"},
		{[]string{"stream", "split", "nope", "shardId-000000000000"}, 1, "ResourceNotFoundException"},
		{[]string{"stream", "list", "--endpoint", "http://127.0.0.1:1"}, 1, "cannot reach http://127.0.0.1:1"},
	})
}

// badInput is a command that must fail with an exit code and one line.
type badInput struct {
	args []string
	code int
	want string
}

// checkBadInput runs each case and checks its exit code and its one line
// of error output.
func checkBadInput(t *testing.T, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		code, _, errOut := runKSP(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("ksp %v: exit %d, %q; want exit %d and one line containing %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// TestMissingCredentials: without --endpoint, the AWS chain must find
// credentials; when it finds none the CLI says what to do.
func TestMissingCredentials(t *testing.T) {
	for k, v := range map[string]string{
		"KSP_ENDPOINT": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": t.TempDir() + "/none", "AWS_SHARED_CREDENTIALS_FILE": t.TempDir() + "/none",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
	} {
		t.Setenv(k, v)
	}
	code, _, errOut := runKSP(t, "stream", "list", "--region", "eu-west-1")
	if code != 1 || !strings.Contains(errOut, "no AWS credentials") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("exit %d, %q; want 1 and one line about credentials", code, errOut)
	}
	code, _, errOut = runKSP(t, "stream", "list")
	if code != 1 || !strings.Contains(errOut, "--region") {
		t.Fatalf("without a region: exit %d, %q", code, errOut)
	}
}

// TestProfileCredentials: --profile picks credentials from the shared
// files; a server that verifies signatures accepts them, and refuses
// the dummy credentials used when the chain finds none.
func TestProfileCredentials(t *testing.T) {
	srv := servertest.Start(t, server.Options{Credentials: map[string]string{"AKIDPROFILE": "s3cret"}})
	dir := t.TempDir()
	os.WriteFile(dir+"/config", []byte("[profile team]\nregion = eu-west-2\n"), 0o600)
	os.WriteFile(dir+"/credentials", []byte("[team]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s3cret\n"), 0o600)
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"KSP_ENDPOINT": srv.URL(),
	} {
		t.Setenv(k, v)
	}
	mustRun(t, "stream", "create", "p", "--profile", "team")
	if row := describeJSON(t, "p", "--profile", "team"); row.Status != "ACTIVE" {
		t.Fatalf("describe with the profile: %+v", row)
	}
	checkBadInput(t, []badInput{
		{[]string{"stream", "list"}, 1, "UnrecognizedClientException"},
		{[]string{"stream", "list", "--profile", "nope"}, 1, "nope"},
	})
}
