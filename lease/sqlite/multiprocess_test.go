package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/sqlite"
)

const (
	childEnv    = "KSP_LEASE_SQLITE_CHILD" // the shared file's path
	workerEnv   = "KSP_LEASE_SQLITE_WORKER"
	childLeases = 3
	childRounds = 60
)

// TestMultiProcess runs three processes that race to take and renew the same
// leases in one file. Each reports every write that succeeded; every success
// must have moved a lease's counter by exactly one, so no two processes ever
// won the same counter value and the final counter equals the number of
// successes, and the final owner is the last winner.
func TestMultiProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "leases.db")
	s, err := sqlite.Open(context.Background(), path, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.CreateTableIfNotExists(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range childLeases {
		if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: fmt.Sprintf("shardId-%012d", i), Checkpoint: lease.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}

	const workers = 3
	outs := make([]bytes.Buffer, workers)
	cmds := make([]*exec.Cmd, workers)
	for w := range workers {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path, workerEnv+"=worker-"+strconv.Itoa(w))
		cmd.Stdout = &outs[w]
		cmd.Stderr = &outs[w]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[w] = cmd
	}
	for w, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("worker %d: %v\n%s", w, err, outs[w].String())
		}
	}

	wins := map[string]map[int64]string{} // key -> counter after the write -> owner
	for w := range workers {
		sc := bufio.NewScanner(&outs[w])
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 || f[0] != "LEASEOP" {
				continue
			}
			c, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if wins[f[1]] == nil {
				wins[f[1]] = map[int64]string{}
			}
			if prev, dup := wins[f[1]][c]; dup {
				t.Fatalf("lease %s: %s and %s both moved the counter to %d", f[1], prev, f[3], c)
			}
			wins[f[1]][c] = f[3]
		}
	}
	ls, err := s.ListLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		w := wins[l.LeaseKey]
		if int64(len(w)) != l.LeaseCounter {
			t.Errorf("lease %s: counter %d after %d successful writes", l.LeaseKey, l.LeaseCounter, len(w))
		}
		if last := w[l.LeaseCounter]; last != l.LeaseOwner {
			t.Errorf("lease %s: owned by %q, but the last write was %q's", l.LeaseKey, l.LeaseOwner, last)
		}
		t.Logf("lease %s: %d writes, owner %s, %d owner switches", l.LeaseKey, len(w), l.LeaseOwner, l.OwnerSwitchesSinceCheckpoint)
	}
	if len(ls) != childLeases {
		t.Fatalf("%d leases, want %d", len(ls), childLeases)
	}
}

// TestMultiProcessChild is one worker process of TestMultiProcess.
func TestMultiProcessChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("run by TestMultiProcess")
	}
	me := os.Getenv(workerEnv)
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range childRounds {
		ls, err := s.ListLeases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			var got lease.Lease
			if l.LeaseOwner == me {
				got, err = s.RenewLease(ctx, l.LeaseKey, me, l.LeaseCounter)
			} else {
				// Greedy: steal whatever is seen, so the processes collide.
				got, err = s.TakeLease(ctx, l.LeaseKey, l.LeaseOwner, l.LeaseCounter, me)
			}
			switch {
			case err == nil:
				fmt.Printf("LEASEOP %s %d %s\n", got.LeaseKey, got.LeaseCounter, got.LeaseOwner)
			case errors.Is(err, lease.ErrConditionFailed):
			default:
				t.Fatalf("%s on %s: %v", me, l.LeaseKey, err)
			}
		}
	}
}

// TestFileIsWAL checks the file is in WAL mode, which lets readers in other
// processes run while one writes.
func TestFileIsWAL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "leases.db")
	s, err := sqlite.Open(context.Background(), path, "app")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

// TestTablesAndReopen checks that two lease tables in one file are
// independent and that leases survive closing and reopening.
func TestTablesAndReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "leases.db")
	open := func(table string) *sqlite.Store {
		s, err := sqlite.Open(ctx, path, table)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTableIfNotExists(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open("app-a"), open("app-b")
	want := lease.Lease{LeaseKey: "shardId-000000000000", LeaseOwner: "w1", LeaseCounter: 3, Checkpoint: lease.Checkpoint{SequenceNumber: "12", SubSequenceNumber: 1}}
	if _, err := a.CreateLeaseIfNotExists(ctx, want); err != nil {
		t.Fatal(err)
	}
	if empty, err := b.IsTableEmpty(ctx); err != nil || !empty {
		t.Fatalf("other table IsTableEmpty = %v, %v; want true", empty, err)
	}
	a.Close()
	b.Close()
	if _, err := a.GetLease(ctx, want.LeaseKey); !errors.Is(err, lease.ErrClosed) {
		t.Fatalf("GetLease after Close: err = %v, want ErrClosed", err)
	}
	a = open("app-a")
	defer a.Close()
	got, err := a.GetLease(ctx, want.LeaseKey)
	if err != nil || got.LeaseCounter != 3 || got.Checkpoint != want.Checkpoint || got.LeaseOwner != "w1" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}
