package multilang

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childWithGrandchild starts a child that starts a process of its own in
// another session (so killing the child's process group spares it), which
// inherits the child's stdin, stdout and stderr and outlives it; the child prints
// the grandchild's pid, then exits with status 3. It returns the child,
// once exited, with a short output drain, and the grandchild's pid (killed
// at the test's end).
func childWithGrandchild(t *testing.T) (*child, int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the child's process group and setsid(1) are Linux's here")
	}
	setsid, err := exec.LookPath("setsid") // util-linux
	if err != nil {
		t.Fatal(err)
	}
	// The grandchild prints its own pid (setsid may fork). sh gives a
	// background job /dev/null for stdin before its redirections: the
	// child's stdin goes through fd 3. The child exits only once the
	// grandchild printed (it says so through a fifo): the pid must be in the
	// pipe before the exit starts next's drain bound, which a slow start of
	// setsid and sh on a busy machine outlasted.
	printed := filepath.Join(t.TempDir(), "printed")
	if err := syscall.Mkfifo(printed, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `exec 3<&0; ` + setsid + ` sh -c 'echo $$; echo > "$1"; exec sleep 60' grandchild "$1" <&3 3<&- & read _ < "$1"; echo "started" >&2; exit 3`
	c, err := startChild([]string{"sh", "-c", script, "child", printed}, nil, 100*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	line, err := c.next(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		t.Fatalf("grandchild pid %q: %v", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// Its fds are its own once it runs sleep (echo > fifo borrows fd 1).
	for i := 0; ; i++ {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && string(comm) == "sleep\n" {
			break
		}
		if i == 1000 {
			t.Fatalf("the grandchild %d did not start sleep within 10 s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for fd := range 3 {
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); err != nil || !strings.HasPrefix(link, "pipe:") {
			t.Fatalf("the grandchild's fd %d is %q (%v), not the child's pipe", fd, link, err)
		}
	}
	<-c.proc.Done()
	return c, pid
}

// returnsWithin fails the test when f hangs: a bound for a hang, not a
// timing (f waits the child's drain, 100 ms here).
func returnsWithin(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return while the grandchild holds the child's output", what)
	}
}

// A child that exited leaving a process that holds its stdout and stderr:
// close still returns, once the drain bound passed, instead of waiting for
// an EOF that never comes.
func TestCloseReturnsWhileAGrandchildHoldsTheChildsOutput(t *testing.T) {
	c, pid := childWithGrandchild(t)
	returnsWithin(t, "close", func() { c.close(time.Second) })
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the grandchild is gone (%v): the test did not hold the output open", err)
	}
}

// Waiting for the next message of such a child, without a message
// timeout, ends with its exit once the drain bound passed.
func TestNextEndsWhenTheChildExitedWhileAGrandchildHoldsStdout(t *testing.T) {
	c, _ := childWithGrandchild(t)
	defer c.close(0)
	var err error
	returnsWithin(t, "next", func() { _, err = c.next(t.Context(), 0) })
	if err == nil || !strings.Contains(err.Error(), "child exited (exit status 3)") {
		t.Fatalf("got %v; want the child's exit", err)
	}
}

// A write to such a child's stdin, which the grandchild holds without
// reading, fails once the drain bound passed instead of blocking on the
// full pipe for ever (here without a message timeout).
func TestSendEndsWhenTheChildExitedWhileAGrandchildHoldsStdin(t *testing.T) {
	c, _ := childWithGrandchild(t)
	defer c.close(0)
	big := append([]byte(strings.Repeat("x", 1<<20)), '\n') // more than a pipe holds
	var err error
	returnsWithin(t, "send", func() { err = c.send(t.Context(), big, 0) })
	if err == nil || !strings.Contains(err.Error(), "child exited (exit status 3)") {
		t.Fatalf("got %v; want the child's exit", err)
	}
}
