package multilang_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/multilangtest"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/multilang"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// logBuffer collects the daemon's log for assertions.
type logBuffer struct {
	mu  sync.Mutex // guards: buf
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if os.Getenv("KSP_TEST_LOG") != "" {
		os.Stderr.Write(p)
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the log holds every one of want, and returns it. A
// child's stderr reaches the log through its own pipe and reader, in no
// order with the records the child wrote meanwhile: a line the child wrote
// before its records may be logged after they are all seen.
func (l *logBuffer) waitFor(t *testing.T, want ...string) string {
	t.Helper()
	for range 1500 {
		log := l.String()
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(log, w) }) {
			return log
		}
		time.Sleep(20 * time.Millisecond)
	}
	log := l.String()
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("the log lacks %q after 30 s", w)
		}
	}
	t.Fatalf("the log:\n%s", log)
	return ""
}

// daemonRun is a daemon running in the test's process.
type daemonRun struct {
	out  string // the processor's records file
	log  *logBuffer
	done chan error
	stop context.CancelFunc
}

// runPython runs the Python test processor in mode over a fresh one-shard
// stream holding records, with extra properties.
func runPython(t *testing.T, mode string, records int, extra ...string) (*daemonRun, []string) {
	t.Helper()
	argv, _ := multilangtest.Processor(t, "python")
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	servertest.CreateStream(t, client, "s", 1)
	want := multilangtest.Put(t, client, "s", mode, records, 5)

	dir := t.TempDir()
	d := &daemonRun{out: filepath.Join(dir, "out.jsonl"), log: &logBuffer{}, done: make(chan error, 1)}
	props, err := multilang.ParseProperties(strings.NewReader(multilangtest.Properties(argv, "s", "app", "http://"+srv.Addr(), extra...)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	go func() {
		d.done <- multilang.Run(ctx, multilang.Config{
			Properties: props,
			Env:        []string{"KCL_TEST_OUT=" + d.out, "KCL_TEST_MODE=" + mode, "KCL_TEST_MARK=" + filepath.Join(dir, "mark")},
			Kinesis:    client,
			LeaseStore: memory.New(),
			Logger:     slog.New(slog.NewTextHandler(d.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Options:    []consumer.Option{consumer.WithMaxRetryBackoff(100 * time.Millisecond), consumer.WithMaxRecords(4)},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			t.Error("the daemon did not stop within 30 s")
		}
	})
	return d, want
}

// pids returns the processes that processed records, in order of first
// record.
func pids(recs []multilangtest.Record) []int {
	var out []int
	seen := map[int]bool{}
	for _, r := range recs {
		if !seen[r.PID] {
			seen[r.PID] = true
			out = append(out, r.PID)
		}
	}
	return out
}

// TestMalformedChildIsRestarted: a child that writes a line of broken JSON
// loses the shard's processor; a new child starts from the last
// checkpoint and every record is processed.
func TestMalformedChildIsRestarted(t *testing.T) {
	t.Parallel()
	d, want := runPython(t, "malformed", 12)
	got := multilangtest.WaitAll(t, d.out, want, 60*time.Second)
	if !strings.Contains(d.log.String(), "malformed message from child") {
		t.Fatalf("the log does not report the malformed message:\n%s", d.log.String())
	}
	if !strings.Contains(d.log.String(), "child started") || strings.Count(d.log.String(), "child started") < 2 {
		t.Fatalf("want a second child started after the malformed one:\n%s", d.log.String())
	}
	// The malformed child processed nothing; its successor everything.
	for _, line := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(line, "child failed") && slices.Contains(pids(got), fieldInt(line, "pid")) {
			t.Fatalf("records were processed by the failed child: %s", line)
		}
	}
	d.log.waitFor(t, "initialized for shardId-000000000000") // the child's stderr
}

// TestHangingChildIsKilled: a child silent past timeoutInSeconds is killed
// and replaced; every record is processed. (The timeout leaves room for a
// child's start on a busy machine: it applies to initialize too.)
func TestHangingChildIsKilled(t *testing.T) {
	t.Parallel()
	d, want := runPython(t, "hang", 12, "timeoutInSeconds = 5")
	multilangtest.WaitAll(t, d.out, want, 60*time.Second)
	log := d.log.String()
	if !strings.Contains(log, "child did not answer in time") {
		t.Fatalf("the log does not report the timeout:\n%s", log)
	}
	// The hung child was killed, not left behind.
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "child did not answer in time") || !strings.Contains(line, "child failed") {
			continue
		}
		pid := fieldInt(line, "pid")
		if pid == 0 {
			t.Fatalf("no pid in %q", line)
		}
		// By /proc, not kill(pid, 0): on a busy machine the pid may be reused.
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && bytes.Contains(cmdline, []byte("kcl_processor.py")) {
			t.Fatalf("hung child %d still runs", pid)
		}
	}
}

// TestCheckpointErrors: a checkpoint where none is allowed and one at a
// record never delivered are answered with the KCL's exception names, and
// processing goes on.
func TestCheckpointErrors(t *testing.T) {
	t.Parallel()
	d, want := runPython(t, "checkpoint-errors", 6)
	multilangtest.WaitAll(t, d.out, want, 60*time.Second)
	// The child writes what it was answered to its stderr.
	d.log.waitFor(t, "checkpoint in initialize: InvalidStateException", "checkpoint at an undelivered record: IllegalArgumentException")
}

// TestOtherProtocolStopsTheDaemon: an executable whose first answer is not
// the protocol's stops Run with ErrProtocol.
func TestOtherProtocolStopsTheDaemon(t *testing.T) {
	t.Parallel()
	d, _ := runPython(t, "echo-status", 3)
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		if !errors.Is(err, multilang.ErrProtocol) {
			t.Fatalf("Run = %v, want ErrProtocol", err)
		}
		if !strings.Contains(err.Error(), `status for "processRecords" while waiting for the status of "initialize"`) {
			t.Fatalf("error does not say what the child answered: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Run still running 30 s after a child spoke another protocol:\n%s", d.log.String())
	}
}

// TestExecutableCheckedFirst: a missing or non-executable program fails Run
// before the lease table is touched.
func TestExecutableCheckedFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "proc.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ exe, want string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{notExec, "permission denied"},
		{dir, "is a directory"},
	} {
		props, err := multilang.ParseProperties(strings.NewReader("executableName = " + tc.exe + "\napplicationName = a\nstreamName = s\n"))
		if err != nil {
			t.Fatal(err)
		}
		store := memory.New()
		err = multilang.Run(context.Background(), multilang.Config{Properties: props, Kinesis: nil, LeaseStore: store})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Run with %s = %v, want one line with %q", tc.exe, err, tc.want)
		}
		if ok, _ := store.TableExists(context.Background()); ok {
			t.Errorf("Run with %s created the lease table", tc.exe)
		}
	}
}

// fieldInt reads key=N from a slog text line.
func fieldInt(line, key string) int {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range line[i+len(key)+2:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestBareScriptInWorkingDirectory: a bare executableName that is not on
// PATH is found in the working directory, as the KCL samples expect.
func TestBareScriptInWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sample_app.py"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if err := multilang.CheckExecutable([]string{"sample_app.py"}); err != nil {
		t.Fatalf("a script in the working directory: %v", err)
	}
	if err := multilang.CheckExecutable([]string{"no_such_app.py"}); err == nil || !strings.Contains(err.Error(), `executableName "no_such_app.py"`) {
		t.Fatalf("a missing script: %v", err)
	}
}
