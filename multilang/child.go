package multilang

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/internal/procattr"
)

// maxLine bounds one line of a child's output; a longer one is malformed
// (a child only ever sends short status and checkpoint messages).
const maxLine = 1 << 20

// outputDrain bounds how long close and next wait, after the child exited,
// for the end of its stdout (and close for its stderr), and how long a
// write to its stdin may block then: a process the child started (and that
// left its process group) may hold them open for ever. After it the pipes
// are closed under the readers.
const outputDrain = 2 * time.Second

// errTimeout reports a child that did not answer within the timeout.
var errTimeout = errors.New("multilang: child did not answer in time")

// child is one running executable speaking the protocol for one shard.
// Its output is read through pipes of our own (not cmd's), so the lines a
// child wrote just before exiting are still read after its exit.
type child struct {
	proc  *childproc.Process
	stdin *os.File
	lines chan []byte // stdout, one line each; closed at EOF or a read error
	// readErr is why stdout could not be read (a line over maxLine); set
	// before lines is closed.
	readErr error
	done    chan struct{} // closed by close: stops the readers
	stdout  *os.File      // our read ends, closed by their readers at EOF,
	stderr  *os.File      // or by close after drain
	drain   time.Duration // outputDrain (tests shorten it)
	wg      sync.WaitGroup
	once    sync.Once
	log     *slog.Logger
}

// startChild starts argv with its stdin, stdout and stderr on pipes; stderr
// lines go to log. The child dies with the daemon (Linux) and takes its own
// children down when it is killed. drain bounds the waits for its pipes
// once it exited (outputDrain).
func startChild(argv, env []string, drain time.Duration, log *slog.Logger) (*child, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	procattr.NewGroup(cmd)
	procattr.KillWithParent(cmd)
	p, err := childproc.Start(cmd)
	// The child holds its ends now; ours must go, so EOF comes when it exits.
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, err
	}
	c := &child{proc: p, stdin: inW, lines: make(chan []byte, 16), done: make(chan struct{}), stdout: outR, stderr: errR, drain: drain, log: log.With("pid", p.Pid())}
	c.wg.Add(3)
	go c.readStdout()
	go c.readStderr()
	go c.closeStdinAfterExit()
	return c, nil
}

// closeStdinAfterExit closes our end of the child's stdin c.drain after the
// child exited: a process it started may hold the other end without
// reading it, and a write blocked on the full pipe would never end.
func (c *child) closeStdinAfterExit() {
	defer c.wg.Done()
	select {
	case <-c.proc.Done():
	case <-c.done:
		return
	}
	t := time.NewTimer(c.drain)
	defer t.Stop()
	select {
	case <-t.C:
		c.stdin.Close()
	case <-c.done:
	}
}

func (c *child) readStdout() {
	defer c.wg.Done()
	defer c.stdout.Close()
	defer close(c.lines)
	sc := bufio.NewScanner(c.stdout)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		select {
		case c.lines <- line:
		case <-c.done:
			return
		}
	}
	if err := sc.Err(); !errors.Is(err, os.ErrClosed) { // closed by drain: not the child's fault
		c.readErr = err // published by close(c.lines)
	}
}

// readStderr forwards the child's stderr to the log, line by line, as the
// Java daemon's DrainChildSTDERRTask does.
func (c *child) readStderr() {
	defer c.wg.Done()
	defer c.stderr.Close()
	sc := bufio.NewScanner(c.stderr)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		c.log.Info("child stderr", "line", sc.Text())
	}
}

// send writes one line to the child's stdin. A child that does not take it
// within timeout (0: no limit), or ctx ending, kills the child.
func (c *child) send(ctx context.Context, line []byte, timeout time.Duration) error {
	defer c.watch(ctx, timeout)()
	if _, err := c.stdin.Write(line); err != nil {
		return c.why(ctx, fmt.Errorf("writing to child: %w", err))
	}
	return nil
}

// next returns the child's next line of output.
func (c *child) next(ctx context.Context, timeout time.Duration) ([]byte, error) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	// Once the child exited, the lines it wrote before are still read,
	// for at most outputDrain: a process it started may hold its stdout
	// open, and no EOF would ever come.
	exited := c.proc.Done()
	var drained <-chan time.Time
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				if c.readErr != nil {
					c.kill()
					return nil, fmt.Errorf("%w: %v", ErrMalformed, c.readErr)
				}
				return nil, c.closedStdout()
			}
			return line, nil
		case <-exited:
			exited = nil
			t := time.NewTimer(c.drain)
			defer t.Stop()
			drained = t.C
		case <-drained:
			return nil, fmt.Errorf("child exited (%v); a process it started still holds its stdout", exitStatus(c.proc.Err()))
		case <-expired:
			c.kill()
			return nil, fmt.Errorf("%w: nothing within %s", errTimeout, timeout)
		case <-ctx.Done():
			c.kill()
			return nil, context.Cause(ctx)
		}
	}
}

// closedStdout explains the end of the child's output: its exit, or, when
// it closed stdout and lives on, that (it is killed: it can no longer answer).
func (c *child) closedStdout() error {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.proc.Done():
		return fmt.Errorf("child exited (%v)", exitStatus(c.proc.Err()))
	case <-t.C:
		c.kill()
		return errors.New("child closed its stdout")
	}
}

// watch kills the child when ctx ends or timeout passes before the
// returned stop is called.
func (c *child) watch(ctx context.Context, timeout time.Duration) (stop func()) {
	stopCtx := context.AfterFunc(ctx, c.kill)
	var t *time.Timer
	if timeout > 0 {
		t = time.AfterFunc(timeout, c.kill)
	}
	return func() {
		stopCtx()
		if t != nil {
			t.Stop()
		}
	}
}

// why explains a failed write: the child's exit, ctx, or err.
func (c *child) why(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	select {
	case <-c.proc.Done():
		return fmt.Errorf("child exited (%v)", exitStatus(c.proc.Err()))
	case <-time.After(100 * time.Millisecond): // a write fails just before the exit is seen
		return err
	}
}

func (c *child) kill() { c.proc.Stop(0) }

// close ends the child: its stdin is closed so it can exit by itself within
// grace, then it is killed; the readers are stopped and waited for, at most
// outputDrain once the child is gone (then its output pipes are closed).
func (c *child) close(grace time.Duration) {
	c.once.Do(func() {
		c.stdin.Close()
		t := time.NewTimer(grace)
		select {
		case <-c.proc.Done():
		case <-t.C:
			if grace > 0 {
				c.log.Warn("child did not exit after its last message; killing it", "grace", grace)
			}
		}
		t.Stop()
		c.proc.Stop(0)
		close(c.done)
		c.drainOutput()
	})
}

// drainOutput waits for the readers to reach the end of the child's
// output. A process the child left behind may hold its stdout or stderr
// open: after c.drain the pipes are closed, which ends the readers' reads.
func (c *child) drainOutput() {
	drained := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(drained)
	}()
	t := time.NewTimer(c.drain)
	defer t.Stop()
	select {
	case <-drained:
		return
	case <-t.C:
	}
	c.log.Warn("a process the child started still holds its output; closing the pipes", "waited", c.drain)
	c.stdout.Close()
	c.stderr.Close()
	<-drained
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
