package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/internal/procattr"
)

// runMainEnv makes the test binary run main() instead of the tests, so the
// tests can start `ksp server` as a real child process without a go build.
const runMainEnv = "KSP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

var endpointLine = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// childServer is `ksp server` running as a child process.
type childServer struct {
	cmd      *exec.Cmd
	endpoint string
	done     chan struct{} // closed when the process has exited and its output is read
	err      error         // cmd.Wait's result, set before done closes
	mu       sync.Mutex    // guards: stdout
	stdout   bytes.Buffer
	stderr   lockedBuffer
}

// startChild runs `ksp server --addr 127.0.0.1:0` and waits for the line that
// names its endpoint. The process is killed at cleanup if still running.
func startChild(t *testing.T, extra ...string) *childServer {
	t.Helper()
	args := append([]string{"server", "--addr", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	// XDG_STATE_HOME: the default --data-dir goes under the test's own directory.
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "XDG_STATE_HOME="+t.TempDir())
	procattr.KillWithParent(cmd) // never outlive the test (Linux)
	cs := &childServer{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &cs.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ksp server: %v", err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			cs.mu.Lock()
			cs.stdout.WriteString(line + "\n")
			cs.mu.Unlock()
			if m := endpointLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		cs.err = cmd.Wait()
		close(cs.done)
	}()
	t.Cleanup(func() {
		select {
		case <-cs.done:
		default:
			_ = cmd.Process.Kill()
			<-cs.done
		}
	})
	select {
	case cs.endpoint = <-found:
	case <-cs.done:
		t.Fatalf("ksp server exited before printing its endpoint: %v\nstdout:\n%s\nstderr:\n%s", cs.err, cs.output(), cs.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("ksp server printed no endpoint in 60 s\nstdout:\n%s\nstderr:\n%s", cs.output(), cs.stderr.String())
	}
	return cs
}

func (cs *childServer) output() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.stdout.String()
}

// stop sends sig and returns the exit code (-1 for a failure to exit).
func (cs *childServer) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := cs.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-cs.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("ksp server did not exit within 60 s of %v", sig)
	}
	var ee *exec.ExitError
	if errors.As(cs.err, &ee) {
		return ee.ExitCode()
	}
	if cs.err != nil {
		t.Fatalf("waiting for ksp server: %v", cs.err)
	}
	return 0
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu  sync.Mutex // guards: buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// awsCLI runs AWS CLI v1 commands against one endpoint.
type awsCLI struct {
	path     string
	endpoint string
}

func newAWSCLI(t *testing.T) *awsCLI {
	t.Helper()
	path, err := peers.LookPath("aws")
	if err != nil {
		peers.Unavailable(t, fmt.Errorf("aws CLI: %w", err))
	}
	return &awsCLI{path: path}
}

// run executes `aws --endpoint-url E --output json kinesis ARGS...` and
// returns stdout, stderr and the exit code.
func (a *awsCLI) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	full := append([]string{"--endpoint-url", a.endpoint, "--output", "json", "kinesis"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.path, full...)
	home := t.TempDir()
	// Only these AWS settings: no profile, region or credentials of the machine.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"AWS_ACCESS_KEY_ID=ksp", "AWS_SECRET_ACCESS_KEY=ksp", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+home+"/config", "AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials",
		"AWS_MAX_ATTEMPTS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

// ok runs a command that must succeed and decodes its JSON output into out
// (out may be nil for commands that print nothing).
func (a *awsCLI) ok(t *testing.T, out any, args ...string) {
	t.Helper()
	stdout, stderr, code := a.run(t, args...)
	if code != 0 {
		t.Fatalf("aws kinesis %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	if out == nil {
		if strings.TrimSpace(stdout) != "" {
			t.Fatalf("aws kinesis %s printed %q, want nothing", strings.Join(args, " "), stdout)
		}
		return
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("aws kinesis %s: output is not the JSON expected: %v\n%s", strings.Join(args, " "), err, stdout)
	}
}

// TestAWSCLIScenario drives a `ksp server` child process with AWS CLI v1
// through a stream's life: create, wait, describe, list, put, read, tag,
// retention, a failing call and delete.
func TestAWSCLIScenario(t *testing.T) {
	aws := newAWSCLI(t) // skips (fails in CI) without the aws CLI
	srv := startChild(t)
	aws.endpoint = srv.endpoint
	const stream = "cli-scenario"

	aws.ok(t, nil, "create-stream", "--stream-name", stream, "--shard-count", "2")
	aws.ok(t, nil, "wait", "stream-exists", "--stream-name", stream)

	var desc struct {
		StreamDescription struct {
			StreamName, StreamARN, StreamStatus string
			RetentionPeriodHours                int
			HasMoreShards                       bool
			Shards                              []struct {
				ShardId      string
				HashKeyRange struct{ StartingHashKey, EndingHashKey string }
			}
		}
	}
	aws.ok(t, &desc, "describe-stream", "--stream-name", stream)
	d := desc.StreamDescription
	if d.StreamName != stream || d.StreamStatus != "ACTIVE" || d.RetentionPeriodHours != 24 || d.HasMoreShards ||
		d.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/"+stream {
		t.Fatalf("describe-stream: %+v", d)
	}
	if len(d.Shards) != 2 || d.Shards[0].ShardId != "shardId-000000000000" || d.Shards[1].ShardId != "shardId-000000000001" ||
		d.Shards[0].HashKeyRange.StartingHashKey != "0" ||
		d.Shards[0].HashKeyRange.EndingHashKey != "170141183460469231731687303715884105727" ||
		d.Shards[1].HashKeyRange.EndingHashKey != "340282366920938463463374607431768211455" {
		t.Fatalf("describe-stream shards: %+v", d.Shards)
	}

	var summary struct {
		StreamDescriptionSummary struct {
			StreamName, StreamStatus string
			OpenShardCount           int
			RetentionPeriodHours     int
		}
	}
	aws.ok(t, &summary, "describe-stream-summary", "--stream-name", stream)
	if s := summary.StreamDescriptionSummary; s.StreamName != stream || s.StreamStatus != "ACTIVE" || s.OpenShardCount != 2 {
		t.Fatalf("describe-stream-summary: %+v", s)
	}

	var list struct{ StreamNames []string }
	aws.ok(t, &list, "list-streams")
	if len(list.StreamNames) != 1 || list.StreamNames[0] != stream {
		t.Fatalf("list-streams: %v", list.StreamNames)
	}

	var shards struct{ Shards []struct{ ShardId string } }
	aws.ok(t, &shards, "list-shards", "--stream-name", stream)
	if len(shards.Shards) != 2 || shards.Shards[0].ShardId != "shardId-000000000000" || shards.Shards[1].ShardId != "shardId-000000000001" {
		t.Fatalf("list-shards: %+v", shards.Shards)
	}

	// AWS CLI v1 sends a blob argument's text as the bytes themselves (it
	// base64-encodes them on the wire), so --data hello stores "hello".
	var put struct{ ShardId, SequenceNumber, EncryptionType string }
	aws.ok(t, &put, "put-record", "--stream-name", stream, "--partition-key", "pk-1", "--data", "hello", "--explicit-hash-key", "0")
	if put.ShardId != "shardId-000000000000" || put.SequenceNumber == "" {
		t.Fatalf("put-record: %+v", put)
	}
	var puts struct {
		FailedRecordCount int
		Records           []struct{ ShardId, SequenceNumber, ErrorCode string }
	}
	aws.ok(t, &puts, "put-records", "--stream-name", stream, "--records",
		`[{"Data":"world","PartitionKey":"pk-2","ExplicitHashKey":"1"},{"Data":"on the other shard","PartitionKey":"pk-3","ExplicitHashKey":"340282366920938463463374607431768211455"}]`)
	if puts.FailedRecordCount != 0 || len(puts.Records) != 2 ||
		puts.Records[0].ShardId != "shardId-000000000000" || puts.Records[1].ShardId != "shardId-000000000001" ||
		puts.Records[0].SequenceNumber <= put.SequenceNumber {
		t.Fatalf("put-records: %+v (put-record sequence number %s)", puts, put.SequenceNumber)
	}

	var it struct{ ShardIterator string }
	aws.ok(t, &it, "get-shard-iterator", "--stream-name", stream, "--shard-id", "shardId-000000000000", "--shard-iterator-type", "TRIM_HORIZON")
	if it.ShardIterator == "" {
		t.Fatal("get-shard-iterator returned no iterator")
	}
	var recs struct {
		Records []struct {
			SequenceNumber, PartitionKey, Data string
			ApproximateArrivalTimestamp        float64
		}
		NextShardIterator  string
		MillisBehindLatest *int64
	}
	aws.ok(t, &recs, "get-records", "--shard-iterator", it.ShardIterator)
	want := []struct{ key, data, seq string }{
		{"pk-1", "hello", put.SequenceNumber},
		{"pk-2", "world", puts.Records[0].SequenceNumber},
	}
	if len(recs.Records) != len(want) || recs.NextShardIterator == "" || recs.MillisBehindLatest == nil {
		t.Fatalf("get-records: %+v", recs)
	}
	for i, w := range want {
		r := recs.Records[i]
		data, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil {
			t.Fatalf("record %d Data %q is not base64: %v", i, r.Data, err)
		}
		if string(data) != w.data || r.PartitionKey != w.key || r.SequenceNumber != w.seq || r.ApproximateArrivalTimestamp <= 0 {
			t.Fatalf("record %d: %+v (data %q), want key %s data %q sequence number %s", i, r, data, w.key, w.data, w.seq)
		}
	}

	aws.ok(t, nil, "add-tags-to-stream", "--stream-name", stream, "--tags", "env=test,team=ksp")
	var tags struct {
		Tags        []struct{ Key, Value string }
		HasMoreTags bool
	}
	aws.ok(t, &tags, "list-tags-for-stream", "--stream-name", stream)
	if len(tags.Tags) != 2 || tags.Tags[0] != (struct{ Key, Value string }{"env", "test"}) ||
		tags.Tags[1] != (struct{ Key, Value string }{"team", "ksp"}) || tags.HasMoreTags {
		t.Fatalf("list-tags-for-stream: %+v", tags)
	}

	aws.ok(t, nil, "increase-stream-retention-period", "--stream-name", stream, "--retention-period-hours", "48")
	aws.ok(t, &summary, "describe-stream-summary", "--stream-name", stream)
	if got := summary.StreamDescriptionSummary.RetentionPeriodHours; got != 48 {
		t.Fatalf("retention after increase-stream-retention-period 48: %d", got)
	}

	stdout, stderr, code := aws.run(t, "describe-stream", "--stream-name", "no-such-stream")
	if code == 0 || !strings.Contains(stderr, "ResourceNotFoundException") || !strings.Contains(stderr, "no-such-stream") {
		t.Fatalf("describe-stream of a missing stream: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}

	aws.ok(t, nil, "delete-stream", "--stream-name", stream)
	stdout, stderr, code = aws.run(t, "describe-stream-summary", "--stream-name", stream)
	if code == 0 || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Fatalf("describe-stream-summary after delete-stream: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	aws.ok(t, &list, "list-streams")
	if len(list.StreamNames) != 0 {
		t.Fatalf("list-streams after delete-stream: %v", list.StreamNames)
	}
}

// TestServerStopsOnSignal checks that `ksp server` exits 0 on SIGTERM and
// SIGINT, after saying so.
func TestServerStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			srv := startChild(t)
			listStreams(t, srv.endpoint) // it serves before the signal
			if code := srv.stop(t, sig); code != 0 {
				t.Fatalf("exit code %d after %v, want 0\nstdout:\n%s\nstderr:\n%s", code, sig, srv.output(), srv.stderr.String())
			}
			if out := srv.output(); !strings.Contains(out, "ksp server stopping") {
				t.Fatalf("stdout does not say the server is stopping:\n%s", out)
			}
		})
	}
}

// listStreams calls ListStreams with a raw request and fails unless it succeeds.
func listStreams(t *testing.T, endpoint string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("ListStreams at %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"StreamNames"`) {
		t.Fatalf("ListStreams at %s: %d %s", endpoint, resp.StatusCode, body)
	}
}

func TestRunRejectsBadFlagValue(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"server", "--limits", "bogus"}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("Run returned %d, want 2 (usage error)\nstderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--limits") || !strings.Contains(stderr.String(), "bogus") {
		t.Fatalf("stderr does not name the flag and its value: %q", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout of a usage error: %q", stdout.String())
	}
}

func TestRunServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	result := make(chan int, 1)
	go func() {
		code := Run(ctx, []string{"server", "--addr", "127.0.0.1:0", "--log-level", "warn"}, pw, &stderr)
		pw.Close()
		result <- code
	}()

	// Read stdout until the endpoint line, then keep draining it so Run
	// never blocks writing.
	endpoint := make(chan string, 1)
	var rest lockedBuffer
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(&rest, line)
			if m := endpointLine.FindStringSubmatch(line); m != nil && !sent {
				endpoint <- m[1]
				sent = true
			}
		}
	}()

	var url string
	select {
	case url = <-endpoint:
	case code := <-result:
		t.Fatalf("Run returned %d before printing the endpoint\nstderr: %s", code, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("Run printed no endpoint in 60 s")
	}
	listStreams(t, url)

	cancel()
	select {
	case code := <-result:
		if code != 0 {
			t.Fatalf("Run returned %d after cancel, want 0\nstderr: %s", code, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60 s of cancel")
	}
	<-drained
	if !strings.Contains(rest.String(), "ksp server stopping") {
		t.Fatalf("stdout: %q", rest.String())
	}
}
