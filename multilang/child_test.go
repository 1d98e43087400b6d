package multilang

import (
	"log/slog"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A child that started a process of its own, in another session (so
// killing the child's process group spares it), and exited leaves that
// process holding its stdout and stderr: close still returns, once the
// drain bound passed, instead of waiting for an EOF that never comes.
func TestCloseReturnsWhileAGrandchildHoldsTheChildsOutput(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the child's process group and setsid(1) are Linux's here")
	}
	setsid, err := exec.LookPath("setsid") // util-linux
	if err != nil {
		t.Fatal(err)
	}
	// The grandchild inherits the child's stdout and stderr and outlives it.
	script := setsid + ` sleep 60 & echo $!; echo "started" >&2; exit 0`
	c, err := startChild([]string{"sh", "-c", script}, nil, slog.New(slog.DiscardHandler))
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
	<-c.proc.Done()

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		c.close(time.Second)
	}()
	select {
	case <-closed:
	case <-time.After(10 * outputDrain): // a hang, not a timing: close waits outputDrain
		t.Fatal("close did not return while the grandchild holds the child's output")
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the grandchild is gone (%v): the test did not hold the output open", err)
	}
}
