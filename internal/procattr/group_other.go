//go:build !unix

package procattr

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// NewGroup does nothing here.
func NewGroup(cmd *exec.Cmd) {}

// KillGroup kills p only: this platform has no process groups to kill.
func KillGroup(p *os.Process) error { return p.Kill() }

// InGroup is always false here.
func InGroup(cmd *exec.Cmd) bool { return false }

// Signal ends p: this platform can only kill a process, so every signal
// kills it (a graceful stop is not possible). A process that has already
// exited is not an error.
func Signal(p *os.Process, group bool, sig syscall.Signal) error {
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
