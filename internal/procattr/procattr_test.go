//go:build unix

package procattr_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/procattr"
)

// TestKillGroupReachesGrandchildren: a child started with NewGroup (and
// KillWithParent) is killed by KillGroup together with the process it
// started.
func TestKillGroupReachesGrandchildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & echo $!; wait")
	procattr.NewGroup(cmd)
	procattr.KillWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	grandchild, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if err := procattr.KillGroup(cmd.Process); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for range 3000 { // 30 s at most
		if err := syscall.Kill(grandchild, 0); err == syscall.ESRCH || zombie(grandchild) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d, started by the killed child, is still alive", grandchild)
}

// zombie reports whether pid has died but was not reaped yet (Linux; a
// container's init may never reap it).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, ok := strings.Cut(string(b), ") ")
	return ok && strings.HasPrefix(after, "Z")
}
