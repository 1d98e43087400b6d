//go:build !unix

package procattr

import (
	"os"
	"os/exec"
)

// NewGroup does nothing here.
func NewGroup(cmd *exec.Cmd) {}

// KillGroup kills p only: this platform has no process groups to kill.
func KillGroup(p *os.Process) error { return p.Kill() }
