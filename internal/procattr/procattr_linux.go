package procattr

import (
	"os/exec"
	"syscall"
)

// KillWithParent makes the kernel send cmd's process SIGKILL when the
// thread that started it ends (Pdeathsig). Call it before cmd.Start.
func KillWithParent(cmd *exec.Cmd) { attr(cmd).Pdeathsig = syscall.SIGKILL }
