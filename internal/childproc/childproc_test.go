//go:build unix

package childproc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/procattr"
)

func shell(t *testing.T, script string) *Process {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	m := MatchLine(regexp.MustCompile(`listening on (\S+)`))
	cmd.Stdout = m
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(0) })
	return p
}

func exitStatus(err error) (code int, sig syscall.Signal) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, 0
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1, ws.Signal()
	}
	return ws.ExitStatus(), 0
}

// TestStopTermThenKill: a child that handles SIGTERM exits by itself; one
// that ignores it is killed after the grace period.
func TestStopTermThenKill(t *testing.T) {
	t.Parallel()
	polite := shell(t, `trap 'exit 3' TERM; echo listening on polite; while :; do sleep 0.02; done`)
	deaf := shell(t, `trap '' TERM; echo listening on deaf; while :; do sleep 0.02; done`)
	for _, p := range []*Process{polite, deaf} {
		// Ready once the shell has printed, so its trap is set.
		m := p.cmd.Stdout.(*LineMatcher)
		if err := p.WaitReady(context.Background(), 10*time.Second, func(context.Context) bool { return m.Match() != nil }); err != nil {
			t.Fatal(err)
		}
	}
	polite.Stop(time.Minute)
	if code, _ := exitStatus(polite.Err()); code != 3 {
		t.Fatalf("polite child: %v, want exit 3 from its TERM trap", polite.Err())
	}
	deaf.Stop(100 * time.Millisecond)
	if _, sig := exitStatus(deaf.Err()); sig != syscall.SIGKILL {
		t.Fatalf("deaf child: %v, want killed by SIGKILL", deaf.Err())
	}
	deaf.Stop(time.Minute) // a second Stop only waits
}

// TestWaitReadyFindsLine: a child's readiness line is found in its output,
// and its submatch returned.
func TestWaitReadyFindsLine(t *testing.T) {
	t.Parallel()
	p := shell(t, `sleep 0.05; printf 'noise\nlistening on http://127.0.0.1:9\n'; exec sleep 60`)
	m := p.cmd.Stdout.(*LineMatcher)
	if err := p.WaitReady(context.Background(), 10*time.Second, func(context.Context) bool { return m.Match() != nil }); err != nil {
		t.Fatal(err)
	}
	if got := m.Match()[1]; got != "http://127.0.0.1:9" {
		t.Fatalf("match %q", got)
	}
}

// TestWaitReadyChildExits: a child that exits before it is ready fails the
// wait at once, saying so.
func TestWaitReadyChildExits(t *testing.T) {
	t.Parallel()
	p := shell(t, `exit 7`)
	err := p.WaitReady(context.Background(), time.Minute, func(context.Context) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("WaitReady = %v", err)
	}
	if code, _ := exitStatus(p.Err()); code != 7 {
		t.Fatalf("exit status %v, want 7", p.Err())
	}
}

// TestStopKillsGroup: with Setpgid, Stop reaches the child's own children.
func TestStopKillsGroup(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", `sleep 60 & echo $!; wait`)
	m := MatchLine(regexp.MustCompile(`^(\d+)$`))
	cmd.Stdout = m
	procattr.NewGroup(cmd)
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(context.Background(), 10*time.Second, func(context.Context) bool { return m.Match() != nil }); err != nil {
		t.Fatal(err)
	}
	p.Stop(0)
	var pid int
	for _, c := range m.Match()[1] {
		pid = pid*10 + int(c-'0')
	}
	// The grandchild was killed; once its parent (init) reaps it, it is gone.
	for range 3000 { // 30 s at most
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if b, err := os.ReadFile("/proc/" + m.Match()[1] + "/stat"); err == nil && strings.Contains(string(b), ") Z ") {
			return // killed, waiting to be reaped
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("grandchild %d still running after Stop", pid)
}

func TestRSS(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	rss, peak := RSS(os.Getpid()), PeakRSS(os.Getpid())
	if rss <= 0 || peak < rss {
		t.Fatalf("RSS %d, peak %d", rss, peak)
	}
	if RSS(-1) != 0 {
		t.Fatal("RSS of no process is not 0")
	}
}

func TestCPUTime(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	p := shell(t, "while :; do :; done") // busy until the test stops it
	defer p.Stop(time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for CPUTime(p.Pid()) < 100*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("a busy shell used %s of CPU after 20 s", CPUTime(p.Pid()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if CPUTime(1<<30) != 0 {
		t.Error("CPU time of a process that does not exist is not 0")
	}
}
