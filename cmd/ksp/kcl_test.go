package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/internal/multilangtest"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/internal/procattr"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// kclProcess is `ksp kcl` running as a child process (this test binary
// running main).
type kclProcess struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr lockedBuffer
}

func startKCL(t *testing.T, env []string, args ...string) *kclProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"kcl"}, args...)...)
	cmd.Env = append(append(os.Environ(), runMainEnv+"=1"), env...)
	procattr.KillWithParent(cmd)
	k := &kclProcess{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &k.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ksp kcl: %v", err)
	}
	go func() {
		_ = cmd.Wait()
		close(k.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-k.done
		if t.Failed() {
			t.Logf("ksp kcl %d stderr:\n%s", cmd.Process.Pid, k.stderr.String())
		}
	})
	return k
}

// TestKCLProcessors runs a record processor written against the aws-kcl npm
// package, and one in Python speaking the protocol with amazon_kclpy's
// message shapes, under `ksp kcl` processes sharing a SQLite lease table:
// every record of a 4-shard stream is processed, checkpoints land on
// sub-sequence numbers of KPL aggregates, records put after a split are
// processed, and after the first process is killed with SIGKILL a second
// one takes every shard over, resuming after the checkpoints.
func TestKCLProcessors(t *testing.T) {
	for _, lang := range multilangtest.Languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			kclProcessors(t, lang)
		})
	}
}

func kclProcessors(t *testing.T, lang string) {
	argv, env := multilangtest.Processor(t, lang)
	ctx := context.Background()
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	const stream, app = "orders", "kcltest"
	servertest.CreateStream(t, client, stream, 4)

	dir := t.TempDir()
	out, db, props := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "leases.db"), filepath.Join(dir, "app.properties")
	env = append(env, "KCL_TEST_OUT="+out)
	text := multilangtest.Properties(argv, stream, app, "http://"+srv.Addr(), "metricsLevel = NONE")
	if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	want := multilangtest.Put(t, client, stream, "a", 40, 40)
	first := startKCL(t, env, "--properties", props, "--lease-db", db)
	multilangtest.WaitAll(t, out, want, 60*time.Second)
	if !strings.Contains(first.stderr.String(), "metricsLevel is ignored") {
		t.Errorf("no warning about the ignored property:\n%s", first.stderr.String())
	}

	// A split: the records put after it go to the two children.
	shards := servertest.Shards(t, client, stream)
	mid, err := midpoint(ctx, client, stream, *shards[0].ShardId)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: shards[0].ShardId, NewStartingHashKey: aws.String(mid),
	}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(ctx, client, stream); err != nil {
		t.Fatal(err)
	}
	want = append(want, multilangtest.Put(t, client, stream, "b", 40, 40)...)
	got := multilangtest.WaitAll(t, out, want, 60*time.Second)
	children := map[string]bool{}
	for _, r := range got {
		if strings.HasPrefix(r.Data, "b-") && r.Shard > *shards[len(shards)-1].ShardId {
			children[r.Shard] = true
		}
	}
	if len(children) != 2 {
		t.Errorf("records after the split were processed from shards %v, want both children of %s", children, *shards[0].ShardId)
	}

	// SIGKILL: the second process resumes after the first one's checkpoints.
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	killedAt := len(multilangtest.ReadOut(t, out))
	checkpoints := leaseCheckpoints(t, db, app)
	subs := 0
	for _, cp := range checkpoints {
		if cp.SubSequenceNumber > 0 {
			subs++
		}
	}
	if subs == 0 {
		t.Errorf("no checkpoint at a sub-sequence number: %v", checkpoints)
	}
	want = append(want, multilangtest.Put(t, client, stream, "c", 40, 40)...)
	second := startKCL(t, env, "--properties", props, "--lease-db", db)
	got = multilangtest.WaitAll(t, out, want, 60*time.Second)
	for _, r := range got[killedAt:] {
		cp, ok := checkpoints[r.Shard]
		if ok && cp.IsShardEnd() {
			t.Errorf("the second process processed %s of %s, a shard checkpointed at SHARD_END", r.Data, r.Shard)
		}
		if !ok || cp.IsSentinel() {
			continue
		}
		if (lease.Checkpoint{SequenceNumber: r.Seq, SubSequenceNumber: r.Sub}).Compare(cp) <= 0 {
			t.Errorf("the second process processed %s (%s/%d on %s), at or before the checkpoint %s", r.Data, r.Seq, r.Sub, r.Shard, cp)
		}
	}

	// A graceful stop exits 0.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.done:
		if code := second.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("ksp kcl exited %d after SIGTERM:\n%s", code, second.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ksp kcl still running 30 s after SIGTERM")
	}
}

// leaseCheckpoints reads each shard's checkpoint from the SQLite lease table.
func leaseCheckpoints(t *testing.T, db, table string) map[string]lease.Checkpoint {
	t.Helper()
	s, err := sqlite.Open(context.Background(), db, table)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	leases, err := s.ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]lease.Checkpoint{}
	for _, l := range leases {
		out[l.LeaseKey] = l.Checkpoint
	}
	return out
}

// TestKCLBadProperties: a properties file without a required key, or naming
// an executable that cannot run, is one line and exit status 2, and no
// lease table is created.
func TestKCLBadProperties(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ name, props, want string }{
		{"missing", "executableName = true\nstreamName = s\n", "missing required applicationName"},
		{"no-executable", "executableName = " + filepath.Join(dir, "nope") + " x\napplicationName = a\nstreamName = s\n", "no such file"},
		{"bad-value", "executableName = true\napplicationName = a\nstreamName = s\nmaxRecords = lots\n", `maxRecords "lots": want an integer`},
	} {
		props, db := filepath.Join(dir, tc.name+".properties"), filepath.Join(dir, tc.name+".db")
		if err := os.WriteFile(props, []byte(tc.props), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"kcl", "--properties", props, "--lease-db", db}, &stdout, &stderr)
		if code != 2 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q", tc.name, code, stderr.String(), tc.want)
		}
		if _, err := os.Stat(db); !os.IsNotExist(err) {
			t.Errorf("%s: the lease file was created", tc.name)
		}
	}
}

// TestKCLDynamoDB runs `ksp kcl` (through Run) on a lease table in DynamoDB
// (dynalite) named after the application, as the Java daemon keeps it.
func TestKCLDynamoDB(t *testing.T) {
	t.Parallel()
	argv, _ := multilangtest.Processor(t, "python")
	ddb := peers.StartT(t, peers.Dynalite, peers.Options{})
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	servertest.CreateStream(t, client, "ddb", 1)
	dir := t.TempDir()
	out, props := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "app.properties")
	text := multilangtest.Properties(append(argv, out), "ddb", "ddbapp", "http://"+srv.Addr(), "dynamoDBEndpoint = "+ddb.URL)
	if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	want := multilangtest.Put(t, client, "ddb", "d", 10, 10)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"kcl", props}, io.Discard, &stderr) }()
	multilangtest.WaitAll(t, out, want, 60*time.Second)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("ksp kcl exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ksp kcl still running 30 s after its context ended")
	}
	store, err := dynamo.New(dynamodb.NewFromConfig(servertest.Config("us-east-1"), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddb.URL)
	}), "ddbapp")
	if err != nil {
		t.Fatal(err)
	}
	l, err := store.GetLease(context.Background(), "shardId-000000000000")
	if err != nil {
		t.Fatalf("the lease is not in the DynamoDB table named after the application: %v", err)
	}
	if l.Checkpoint.IsSentinel() || l.LeaseOwner != "" {
		t.Fatalf("lease after a graceful stop: %+v, want a checkpoint and no owner", l)
	}
}
