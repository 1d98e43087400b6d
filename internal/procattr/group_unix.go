//go:build unix

package procattr

import (
	"os"
	"os/exec"
	"syscall"
)

// NewGroup makes cmd's process lead a new process group, so that KillGroup
// also reaches the processes it starts. Call it before cmd.Start.
func NewGroup(cmd *exec.Cmd) { attr(cmd).Setpgid = true }

// KillGroup kills the process group led by p (started with NewGroup).
func KillGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGKILL) }
