package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestReplicateCLI copies a stream from one server to another with
// --to-endpoint and a SQLite lease file, stops after --count records, and
// every record is at the destination with its partition key. A second run
// resumes from the checkpoints and copies only what arrived since.
func TestReplicateCLI(t *testing.T) {
	startServer(t) // the source, through KSP_ENDPOINT
	dst := servertest.Start(t, server.Options{DisableLimits: true})
	mustRun(t, "stream", "create", "orders", "--shards", "2")
	mustRun(t, "stream", "create", "orders", "--shards", "1", "--endpoint", dst.URL())
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf(`{"user":"u%d","n":%d}`, i%7, i))
	}
	mustRun(t, "put", "orders", writeLines(t, lines...), "--key-field", "user")
	db := filepath.Join(t.TempDir(), "leases.db")
	args := []string{"replicate", "--from", "orders", "--to", "orders", "--to-endpoint", dst.URL(), "--lease-db", db, "--stats-every", "0"}
	if out := mustRun(t, append(args, "--count", "300")...); !strings.Contains(out, "replicated 300 records") {
		t.Fatalf("summary: %q", out)
	}
	mustRun(t, "put", "orders", writeLines(t, `{"user":"late","n":300}`), "--key-field", "user")
	if out := mustRun(t, append(args, "--count", "1")...); !strings.Contains(out, "replicated 1 records") {
		t.Fatalf("second run's summary: %q", out)
	}

	client := servertest.Client(t, dst)
	got := map[string]string{} // data -> partition key
	for _, r := range servertest.ReadShard(t, client, "orders", "shardId-000000000000") {
		for _, u := range aggregation.Deaggregate(nil, aggregation.KinesisRecord{Data: r.Data, PartitionKey: *r.PartitionKey}) {
			if _, dup := got[string(u.Data)]; dup {
				t.Errorf("record %s replicated twice", u.Data)
			}
			got[string(u.Data)] = u.PartitionKey
		}
	}
	if len(got) != 301 {
		t.Fatalf("%d records at the destination, want 301", len(got))
	}
	for i, l := range lines {
		if key := got[l]; key != fmt.Sprintf("u%d", i%7) {
			t.Fatalf("record %s has partition key %q at the destination", l, key)
		}
	}
}

// TestReplicateCLIDynamoDB keeps the checkpoints in a DynamoDB table
// (dynalite, through --lease-table and --lease-endpoint): a second run
// resumes from them and replicates only the record put since.
func TestReplicateCLIDynamoDB(t *testing.T) {
	startServer(t)
	ddb := peers.StartT(t, peers.Dynalite, peers.Options{})
	dst := servertest.Start(t, server.Options{DisableLimits: true})
	mustRun(t, "stream", "create", "clicks", "--shards", "1")
	mustRun(t, "stream", "create", "clicks", "--shards", "1", "--endpoint", dst.URL())
	mustRun(t, "put", "clicks", writeLines(t, "a", "b", "c"), "--key", "k")
	args := []string{"replicate", "--from", "clicks", "--to", "clicks", "--to-endpoint", dst.URL(),
		"--lease-table", "clicks-replicator", "--lease-endpoint", ddb.URL, "--stats-every", "0"}
	if out := mustRun(t, append(args, "--count", "3")...); !strings.Contains(out, "replicated 3 records") {
		t.Fatalf("summary: %q", out)
	}
	mustRun(t, "put", "clicks", writeLines(t, "d"), "--key", "k")
	if out := mustRun(t, append(args, "--count", "1")...); !strings.Contains(out, "replicated 1 records") {
		t.Fatalf("second run's summary: %q", out)
	}
	var got []string
	for _, r := range servertest.ReadShard(t, servertest.Client(t, dst), "clicks", "shardId-000000000000") {
		for _, u := range aggregation.Deaggregate(nil, aggregation.KinesisRecord{Data: r.Data, PartitionKey: *r.PartitionKey}) {
			got = append(got, string(u.Data))
		}
	}
	if strings.Join(got, ",") != "a,b,c,d" {
		t.Fatalf("destination holds %v; want a, b, c, d once each", got)
	}
}

// TestReplicateCLIUsage: missing or contradictory flags are usage errors
// (exit 2) that say what to give.
func TestReplicateCLIUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "a"}, "give both --from STREAM and --to STREAM"},
		{[]string{"--from", "a", "--to", "a", "--lease-db", "x"}, "are the same stream"},
		{[]string{"--from", "a", "--to", "b"}, "give one of --lease-db FILE"},
		{[]string{"--from", "a", "--to", "b", "--lease-db", "x", "--lease-table", "y"}, "give one of --lease-db FILE"},
		{[]string{"--from", "a", "--to", "b", "--lease-db", "x", "--max-in-flight", "0"}, "--max-in-flight 0"},
		{[]string{"--from", "a", "--to", "b", "--lease-db", "x", "--start", "middle"}, `--start "middle"`},
	} {
		code, _, errOut := runKSP(t, append([]string{"replicate"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("ksp replicate %s: exit %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}
