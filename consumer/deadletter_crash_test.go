package consumer_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	kspsink "github.com/ksp-project/ksp/sink"
)

const dlqChildEnv = "KSP_CONSUMER_DLQ_CHILD" // "url|db|dead-letter file|marker"

// freezeAfterAck is a HookDeadLetter that, once the sink accepted the first
// unit, writes the marker and blocks: the process is then killed between
// the sink's acknowledgement and the checkpoint.
type freezeAfterAck struct{ marker string }

func (f freezeAfterAck) OnDeadLetter(_ string, _ int, err error) {
	if err != nil {
		return
	}
	if e := os.WriteFile(f.marker, nil, 0o644); e != nil {
		panic(e)
	}
	select {} // wait for SIGKILL
}

// TestDeadLetterChild is the worker process of TestDeadLetterKill9; it
// does nothing when run on its own.
func TestDeadLetterChild(t *testing.T) {
	env := os.Getenv(dlqChildEnv)
	if env == "" {
		t.Skip("child process of TestDeadLetterKill9")
	}
	f := strings.Split(env, "|")
	ctx, cancel := signal.NotifyContext(bg, syscall.SIGTERM)
	defer cancel()
	store, err := sqlite.Open(ctx, f[1], "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c, err := consumer.New(deadLetterOptions(t, f[0], store, "child", f[2], freezeAfterAck{marker: f[3]}, newFailing())...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// deadLetterOptions are the options of both workers of TestDeadLetterKill9.
func deadLetterOptions(t *testing.T, url string, store *sqlite.Store, worker, file string, hook consumer.Hook, f *failing) []consumer.Option {
	s, err := kspsink.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return append(fast("dlq", servertest.NewClient(url, "us-east-1"), store, worker),
		consumer.WithRecordHandler(f.handle), consumer.WithDeadLetter(s, 2), consumer.WithHooks(hook))
}

// A worker killed with SIGKILL after the sink accepted a dead-lettered
// record but before its checkpoint: the next worker sends that record again,
// and nothing else twice; every record is processed or dead-lettered
// (rec-00, processed and checkpointed by the child, is not replayed).
func TestDeadLetterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	srv, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "dlq", 1)
	var data []string
	for i := range 12 {
		d := fmt.Sprintf("rec-%02d", i)
		if i%4 == 1 {
			d = fmt.Sprintf("bad-%02d", i)
		}
		data = append(data, d)
	}
	putData(t, client, "dlq", data...)
	dir := t.TempDir()
	db, file, marker := filepath.Join(dir, "leases.db"), filepath.Join(dir, "dlq.jsonl"), filepath.Join(dir, "acked")

	cmd := exec.Command(os.Args[0], "-test.run=^TestDeadLetterChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), dlqChildEnv+"="+strings.Join([]string{srv.URL(), db, file, marker}, "|"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 20*time.Second, "the child's first dead-letter acknowledged", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before := deadLettered(t, file)
	if len(before) != 1 {
		t.Fatalf("%d entries when the child was killed, want 1: %v", len(before), before)
	}

	store, err := sqlite.Open(bg, db, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f := newFailing()
	r := start(t, deadLetterOptions(t, srv.URL(), store, "after", file, consumer.HookDeadLetter(nopDeadLetter{}), f)...)
	waitFor(t, 20*time.Second, "every record processed or dead-lettered", func() bool {
		return f.goodCount() == 8 && len(deadLettered(t, file)) >= 4
	})
	r.stop(t)
	f.mu.Lock()
	replayed := f.good["rec-00"]
	f.mu.Unlock()
	if replayed > 0 {
		t.Errorf("rec-00, checkpointed before the kill, was processed again")
	}
	after := deadLettered(t, file)
	count := map[string]int{}
	for _, d := range after {
		count[d]++
	}
	resent := 0
	for d, n := range count {
		if n > 1 {
			resent += n - 1
			if n > 2 || d != before[0] {
				t.Errorf("%s dead-lettered %d times; only %s (acknowledged, not checkpointed) may be sent again, once", d, n, before[0])
			}
		}
	}
	if len(count) != 3 {
		t.Fatalf("dead-lettered %v, want bad-01, bad-05, bad-09", count)
	}
	t.Logf("re-sent after the kill: %d (of the 1-record unit acknowledged before it)", resent)
}

type nopDeadLetter struct{}

func (nopDeadLetter) OnDeadLetter(string, int, error) {}

// deadLettered returns the data of each entry in the file, in order.
func deadLettered(t *testing.T, path string) []string {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	var out []string
	for _, b := range readJSONLines(t, path) {
		var e consumer.DeadLetter
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		out = append(out, string(e.Data))
	}
	return out
}
