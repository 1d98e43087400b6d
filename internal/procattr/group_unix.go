//go:build unix

package procattr

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// NewGroup makes cmd's process lead a new process group, so that KillGroup
// also reaches the processes it starts. Call it before cmd.Start.
func NewGroup(cmd *exec.Cmd) { attr(cmd).Setpgid = true }

// KillGroup kills the process group led by p (started with NewGroup).
func KillGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGKILL) }

// InGroup reports whether cmd was prepared with NewGroup.
func InGroup(cmd *exec.Cmd) bool { return cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid }

// Signal sends sig to p, or to the process group p leads when group is set.
// A process that has already exited is not an error.
func Signal(p *os.Process, group bool, sig syscall.Signal) error {
	pid := p.Pid
	if group {
		pid = -pid
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
