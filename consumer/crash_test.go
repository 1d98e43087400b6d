package consumer_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

const (
	crashChildEnv = "KSP_CONSUMER_CRASH_CHILD" // "url|db|worker|out|polling or fanout"
	crashFailover = time.Second
)

// TestCrashChild is a worker process of TestCrashKill9; it does nothing
// when run on its own.
func TestCrashChild(t *testing.T) {
	env := os.Getenv(crashChildEnv)
	if env == "" {
		t.Skip("child process of TestCrashKill9")
	}
	f := strings.Split(env, "|")
	url, db, worker, out, mode := f[0], f[1], f[2], f[3], f[4]
	ctx, cancel := signal.NotifyContext(bg, syscall.SIGTERM)
	defer cancel()
	store, err := sqlite.Open(ctx, db, "crash")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	file, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	client := servertest.NewClient(url, "us-east-1")
	var modeOpts []consumer.Option
	if mode == "fanout" {
		// Over h2c: over HTTP/1.1 aws-sdk-go-v2 can have net/http close a
		// subscription's connection mid-stream (see server/subscribe_to_shard_test.go).
		var protocols http.Protocols
		protocols.SetUnencryptedHTTP2(true)
		client = servertest.NewClient(url, "us-east-1", func(o *kinesis.Options) {
			o.HTTPClient = &http.Client{Transport: &http.Transport{Protocols: &protocols}}
		})
		modeOpts = []consumer.Option{consumer.WithFanOut("app")}
	}
	handler := func(ctx context.Context, recs []consumer.Record) error {
		var b strings.Builder
		now := time.Now().UnixNano()
		for _, r := range recs {
			fmt.Fprintf(&b, "%s %s %d %s %d\n", r.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.Data, now)
		}
		_, err := file.WriteString(b.String())
		return err
	}
	opts := append(append(fast("crash", client, store, worker), modeOpts...), consumer.WithHandler(handler), consumer.WithFailoverTime(crashFailover))
	c, err := consumer.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

type line struct {
	shard, seq, data string
	at               int64
}

func readLines(t *testing.T, path string) []line {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		if len(p) != 5 {
			continue // a torn last line of the killed process
		}
		at, _ := strconv.ParseInt(p[4], 10, 64)
		out = append(out, line{shard: p[0], seq: p[1] + "/" + p[2], data: p[3], at: at})
	}
	return out
}

// Worker processes sharing a SQLite lease file consume under load; one is
// killed with SIGKILL. The survivors take its shards, nothing is lost, and
// the only records delivered twice after the kill are ones the dead worker
// processed after its last checkpoint on each shard; polling and over fan-out.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	forEachRetrieval(t, func(t *testing.T, mode []consumer.Option) {
		modeName := "polling"
		if len(mode) > 0 {
			modeName = "fanout"
		}
		srv, client := startServer(t, server.Options{})
		servertest.CreateStream(t, client, "crash", 4)
		dir := t.TempDir()
		db := filepath.Join(dir, "leases.db")
		store, err := sqlite.Open(bg, db, "crash")
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if _, err := store.CreateTableIfNotExists(bg); err != nil {
			t.Fatal(err)
		}

		p := newProducer(client, "crash", 20)
		stopPut := p.background(t, 10*time.Millisecond)
		defer stopPut()

		const n = 3
		cmds := make([]*exec.Cmd, n)
		outs := make([]string, n)
		for i := range n {
			outs[i] = filepath.Join(dir, fmt.Sprintf("w%d.out", i))
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+strings.Join([]string{srv.URL(), db, fmt.Sprintf("w%d", i), outs[i], modeName}, "|"))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds[i] = cmd
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		}
		waitFor(t, 30*time.Second, "every worker holding a lease", func() bool {
			o := owners(t, store)
			return o["w0"] > 0 && o["w1"] > 0 && o["w2"] > 0
		})
		waitFor(t, 10*time.Second, "records flowing", func() bool { return len(readLines(t, outs[0])) > 50 })

		if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmds[0].Wait()
		killedAt := time.Now().UnixNano()
		// A failover time and a taking round on a quiet machine; the bound
		// is for a hang, as three workers under -race on a busy machine can
		// take many times that.
		waitFor(t, 30*time.Second, "survivors taking the dead worker's leases", func() bool {
			return owners(t, store)["w0"] == 0
		})
		time.Sleep(300 * time.Millisecond)
		stopPut()

		want := p.total()
		var all [n][]line
		waitFor(t, 30*time.Second, "every record processed", func() bool {
			seen := map[string]bool{}
			for i := range n {
				all[i] = readLines(t, outs[i])
				for _, l := range all[i] {
					seen[l.data] = true
				}
			}
			return len(seen) == want
		})

		// Duplicates redelivered after the kill must be a suffix of what the
		// dead worker processed on that shard.
		dups, dupsAfterKill := 0, 0
		redelivered := map[string]bool{}
		count := map[string]int{}
		for i := range n {
			for _, l := range all[i] {
				count[l.data]++
				if i != 0 && l.at > killedAt {
					redelivered[l.data] = true
				}
			}
		}
		for _, c := range count {
			dups += c - 1
		}
		deadByShard := map[string][]string{}
		for _, l := range all[0] {
			deadByShard[l.shard] = append(deadByShard[l.shard], l.data)
		}
		for _, recs := range deadByShard {
			suffix := true
			for j := len(recs) - 1; j >= 0; j-- {
				if count[recs[j]] > 1 && redelivered[recs[j]] {
					dupsAfterKill++
					if !suffix {
						t.Errorf("record %s was redelivered after the kill although the dead worker checkpointed after it", recs[j])
					}
				} else {
					suffix = false
				}
			}
		}
		t.Logf("records %d, dead worker processed %d, duplicates %d (after the kill, of the dead worker's uncheckpointed records: %d)",
			want, len(all[0]), dups, dupsAfterKill)
		for i := 1; i < n; i++ {
			_ = cmds[i].Process.Signal(syscall.SIGTERM)
		}
	})
}
