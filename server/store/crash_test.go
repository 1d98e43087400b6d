package store_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ksp-project/ksp/server/store"
)

const (
	crashEnv       = "KSP_STORE_CRASH_DIR"
	crashPolicyEnv = "KSP_STORE_CRASH_FSYNC"
)

// crashLogs are the logs the crash child writes, concurrently, so that
// group commit is part of what gets killed.
var crashLogs = []store.LogID{
	{Stream: "crash", Created: 1, ShardIdx: 0},
	{Stream: "crash", Created: 1, ShardIdx: 1},
	{Stream: "crash.", Created: 1, ShardIdx: 0},
}

// crashRec is the record at pos of log k: its content is a function of both,
// so the parent can check every byte and that nothing is out of place.
func crashRec(k int, pos uint64) store.Record {
	n := int(pos*7919+uint64(k)*31) % 600
	data := bytes.Repeat([]byte{byte(pos), byte(k)}, n/2+1)
	return store.Record{
		ArrivalMilli: int64(pos),
		PartitionKey: fmt.Sprintf("k%d-%d", k, pos),
		Data:         append([]byte(fmt.Sprintf("%d/%d/", k, pos)), data...),
	}
}

// TestCrashChild is the child process of TestCrashRecovery: it appends and
// commits until killed, printing "ack <log> <next>" after each Commit.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrashRecovery")
	}
	policy, err := store.ParseFsyncPolicy(os.Getenv(crashPolicyEnv))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	d, err := store.OpenDisk(dir, store.DiskOptions{Fsync: policy, SegmentBytes: 32 << 10})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var (
		mu sync.Mutex
		w  = bufio.NewWriter(os.Stdout)
	)
	var wg sync.WaitGroup
	for k, id := range crashLogs {
		l, err := d.Log(id)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(k), uint64(time.Now().UnixNano())))
			for {
				// This goroutine is the log's only appender and its last
				// Commit published everything, so next is where Append goes.
				_, first, _ := l.Bounds()
				n := 1 + rng.IntN(40)
				recs := make([]store.Record, n)
				for i := range recs {
					recs[i] = crashRec(k, first+uint64(i))
				}
				if got, err := l.Append(recs); err != nil || got != first {
					fmt.Println("error append at", got, "want", first, err)
					os.Exit(2)
				}
				if err := d.Commit(); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %d %d\n", k, first+uint64(n))
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery kills a child appending under FsyncAlways at random
// moments, then checks that every record it acknowledged is there, in order,
// once, with its data. Two more rounds do the same under FsyncInterval and
// FsyncNever, which promise to survive a process crash too (not a power loss,
// which this test cannot cause).
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills child processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	acked := make([]uint64, len(crashLogs))
	policies := []string{"always", "always", "always", "always", "always", "interval", "never"}
	for round, policy := range policies {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashPolicyEnv+"="+policy)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			r := bufio.NewReader(out)
			for {
				s, err := r.ReadString('\n')
				if err != nil { // a line cut by the kill is no acknowledgement
					io.Copy(io.Discard, r)
					return
				}
				lines <- strings.TrimSuffix(s, "\n")
			}
		}()
		// Kill after the first ack plus a random delay, so the kill lands
		// anywhere in the append/commit cycle.
		var kill <-chan time.Time
		deadline := time.After(30 * time.Second)
		acks := 0
	read:
		for {
			select {
			case s, ok := <-lines:
				if !ok {
					break read
				}
				f := strings.Fields(s)
				if len(f) == 3 && f[0] == "ack" {
					k, _ := strconv.Atoi(f[1])
					next, _ := strconv.ParseUint(f[2], 10, 64)
					acked[k] = max(acked[k], next)
					if acks++; acks == 1 {
						kill = time.After(time.Duration(100+rng.IntN(900)) * time.Millisecond)
					}
				} else if len(f) > 0 && f[0] == "error" {
					t.Fatalf("child: %s", s)
				}
			case <-kill:
				cmd.Process.Signal(syscall.SIGKILL)
				kill = nil
			case <-deadline:
				cmd.Process.Kill()
				t.Fatal("child produced no acknowledgement in 30s")
			}
		}
		cmd.Wait()

		d, err := store.OpenDisk(dir, store.DiskOptions{SegmentBytes: 32 << 10})
		if err != nil {
			t.Fatal(err)
		}
		for k, id := range crashLogs {
			l, err := d.Log(id)
			if err != nil {
				t.Fatal(err)
			}
			first, next, _ := l.Bounds()
			if first != 0 || next < acked[k] {
				t.Fatalf("round %d log %d: Bounds %d..%d, but %d records were acknowledged", round, k, first, next, acked[k])
			}
			// Records past the last ack may exist (written, never acked);
			// they must be correct too.
			pos := uint64(0)
			for pos < next {
				recs, err := l.Read(pos, 10000, 8<<20)
				if err != nil {
					t.Fatalf("round %d log %d: Read(%d): %v", round, k, pos, err)
				}
				for _, r := range recs {
					w := crashRec(k, pos)
					if r.Position != pos || r.ArrivalMilli != w.ArrivalMilli || r.PartitionKey != w.PartitionKey || !bytes.Equal(r.Data, w.Data) {
						t.Fatalf("round %d log %d: record at %d is wrong (position %d key %q)", round, k, pos, r.Position, r.PartitionKey)
					}
					pos++
				}
			}
			t.Logf("round %d (%s) log %d: %d acknowledged, %d on disk", round, policy, k, acked[k], next)
			acked[k] = next // what the next child builds on
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
