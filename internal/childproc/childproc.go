// Package childproc runs the child processes of ksp's tests and benchmarks
// (the npm peers, ksp servers, benchmark workers) one way: start a prepared
// command and track its exit, wait until it is ready, and stop it with
// SIGTERM, then SIGKILL after a grace period.
//
// A Process is stopped at most once; Stop and Kill may be called from any
// goroutine, any number of times. The exit is always waited for, so no child
// is left a zombie.
package childproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ksp-project/ksp/internal/procattr"
)

// Process is a started child process.
type Process struct {
	cmd   *exec.Cmd
	group bool          // the child leads its own process group: signal the group
	done  chan struct{} // closed when the child has exited and been waited for
	err   error         // the exit status; written before done closes
	stop  sync.Once
}

// Start starts cmd, prepared by the caller (arguments, environment, output,
// SysProcAttr), and tracks its exit. When cmd was prepared with
// procattr.NewGroup the
// signals go to the child's whole process group, so a child that spawns its
// own children (node does) takes them down with it.
//
// Unless the caller set cmd.WaitDelay, the exit is complete at most 5 s after
// the child itself exits, even when a grandchild keeps its output open.
func Start(cmd *exec.Cmd) (*Process, error) {
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	p.group = procattr.InGroup(cmd)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the child's exit status (nil for exit code 0); valid after Done.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Signal sends sig to the child (its group, see Start). Signalling a child
// that has exited is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := procattr.Signal(p.cmd.Process, p.group, sig); err != nil {
		return fmt.Errorf("signal %v to %d: %w", sig, p.cmd.Process.Pid, err)
	}
	return nil
}

// Stop asks the child to shut down with SIGTERM and sends SIGKILL when it
// has not exited after grace (at once when grace is 0); it returns once the
// child has exited. Later calls only wait for the exit.
func (p *Process) Stop(grace time.Duration) {
	p.stop.Do(func() {
		if grace > 0 {
			_ = p.Signal(syscall.SIGTERM)
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
		_ = p.Signal(syscall.SIGKILL)
	})
	<-p.done
}

// WaitReady asks ready every poll interval (20 ms, growing to 200 ms) until
// it reports true, and fails when the child exits first, ctx ends, or limit
// passes.
func (p *Process) WaitReady(ctx context.Context, limit time.Duration, ready func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(time.Duration(min(attempt, 10)) * 20 * time.Millisecond)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("%s exited before it was ready: %v", p.cmd.Path, p.err)
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %s", p.cmd.Path, limit)
			}
			return ctx.Err()
		case <-t.C:
		}
		if ready(ctx) {
			return nil
		}
	}
}

// LineMatcher is an io.Writer for a child's output that looks for the first
// line matching a pattern, such as a server's "listening on" line.
type LineMatcher struct {
	re    *regexp.Regexp
	mu    sync.Mutex // guards: buf, found, match
	buf   []byte
	found bool
	match []string
}

// MatchLine returns a LineMatcher for re.
func MatchLine(re *regexp.Regexp) *LineMatcher { return &LineMatcher{re: re} }

func (m *LineMatcher) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.found {
		return len(b), nil
	}
	m.buf = append(m.buf, b...)
	for {
		i := bytes.IndexByte(m.buf, '\n')
		if i < 0 {
			break
		}
		line := string(m.buf[:i])
		m.buf = m.buf[i+1:]
		if sub := m.re.FindStringSubmatch(line); sub != nil {
			m.found, m.match, m.buf = true, sub, nil
			break
		}
	}
	if len(m.buf) > 64<<10 { // a line this long is not the one wanted
		m.buf = m.buf[:0]
	}
	return len(b), nil
}

// Match returns the submatches of the first matching line, or nil.
func (m *LineMatcher) Match() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.match
}

var _ io.Writer = (*LineMatcher)(nil)

// RSS is the resident set size of process pid (VmRSS), in bytes; 0 when
// unknown (not Linux, or the process is gone).
func RSS(pid int) int64 { return statusBytes(pid, "VmRSS") }

// PeakRSS is the high-water mark of process pid's resident set (VmHWM), in
// bytes; 0 when unknown.
func PeakRSS(pid int) int64 { return statusBytes(pid, "VmHWM") }

// statusBytes reads a "Name:  N kB" line of /proc/pid/status.
func statusBytes(pid int, name string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// CPUTime is the user plus system CPU time process pid has used (utime and
// stime of /proc/pid/stat, at the kernel's 100 Hz accounting); 0 when
// unknown.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces; the
	// fields after its closing parenthesis start with field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}
