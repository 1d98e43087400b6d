package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/server/servertest"
)

// writeLines writes lines to a file in the test's directory.
func writeLines(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPutKeyFieldBadLine: with --key-field, a line that is not JSON is
// reported with its line number; --on-error fail puts nothing, skip puts
// every other line, aggregated, with the field as partition key.
func TestPutKeyFieldBadLine(t *testing.T) {
	srv := startServer(t)
	mustRun(t, "stream", "create", "events", "--shards", "1")
	file := writeLines(t, `{"user_id":"u1","n":1}`, `{"user_id":42,"n":2}`, `not json`, ``, `{"n":4}`, `{"user_id":"u1","n":5}`)

	code, out, errOut := runKSP(t, "put", "events", file, "--key-field", "user_id")
	if code != 1 || !strings.Contains(errOut, "in.jsonl:3: not a JSON object") || strings.Count(errOut, "\n") != 1 || out != "" {
		t.Fatalf("--on-error fail: exit %d, stdout %q, stderr %q; want 1 and one line naming line 3", code, out, errOut)
	}
	client := servertest.Client(t, srv)
	shard := servertest.Shards(t, client, "events")[0]
	if got := servertest.ReadShard(t, client, "events", *shard.ShardId); len(got) != 0 {
		t.Fatalf("a failed put wrote %d records; want none", len(got))
	}

	code, out, errOut = runKSP(t, "put", "events", file, "--key-field", "user_id", "--on-error", "skip")
	if code != 0 {
		t.Fatalf("--on-error skip: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "in.jsonl:3:") || !strings.Contains(errOut, `in.jsonl:5: no field "user_id"`) {
		t.Fatalf("skipped lines not reported with their numbers: %q", errOut)
	}
	if !strings.Contains(out, "put 3 records in 1 Kinesis records to events (0 retries, 0 failed, 2 skipped)") {
		t.Fatalf("summary: %q", out)
	}
	var keys, data []string
	for _, r := range servertest.ReadShard(t, client, "events", *shard.ShardId) {
		for _, u := range aggregation.Deaggregate(nil, aggregation.KinesisRecord{Data: r.Data, PartitionKey: *r.PartitionKey}) {
			keys = append(keys, u.PartitionKey)
			data = append(data, string(u.Data))
		}
	}
	if want := []string{"u1", "42", "u1"}; !slices.Equal(keys, want) {
		t.Fatalf("partition keys %v; want %v (data %v)", keys, want, data)
	}
}

func TestPutBadInput(t *testing.T) {
	startServer(t)
	file := writeLines(t, "a", "b")
	checkBadInput(t, []badInput{
		{[]string{"put"}, 2, "needs a STREAM"},
		{[]string{"put", "s", file, "--on-error", "maybe"}, 2, "skip or fail"},
		{[]string{"put", "s", file, "--key", "k", "--key-field", "f"}, 2, "at most one"},
		{[]string{"put", "s", file, "--key-template", "{{.Nope"}, 2, "key template"},
		{[]string{"put", "s", file + ".missing"}, 1, "no such file"},
		{[]string{"put", "nosuchstream", file}, 1, "ResourceNotFoundException"},
	})
}

// TestPutDelimiterTemplate: --delimiter splits on another separator and
// --key-template builds keys from the source and line number.
func TestPutDelimiterTemplate(t *testing.T) {
	srv := startServer(t)
	mustRun(t, "stream", "create", "s", "--shards", "1")
	path := filepath.Join(t.TempDir(), "recs")
	os.WriteFile(path, []byte("x;y;z"), 0o644)
	out := mustRun(t, "put", "s", path, "--delimiter", ";", "--key-template", "k{{.Line}}", "--aggregate=false")
	if !strings.Contains(out, "put 3 records in 3 Kinesis records") {
		t.Fatalf("summary: %q", out)
	}
	client := servertest.Client(t, srv)
	var got []string
	for _, r := range servertest.ReadShard(t, client, "s", "shardId-000000000000") {
		got = append(got, fmt.Sprintf("%s=%s", *r.PartitionKey, r.Data))
	}
	slices.Sort(got)
	if want := []string{"k1=x", "k2=y", "k3=z"}; !slices.Equal(got, want) {
		t.Fatalf("records %v; want %v", got, want)
	}
}
