// Package procattr sets the platform-specific attributes of the child
// processes ksp starts (npm peers, benchmark workers), so that callers build
// on every platform: Linux kills a child when its parent dies; other Unix
// systems and Windows have no such attribute, and a child of a killed parent
// keeps running there until it exits.
package procattr

import (
	"os/exec"
	"syscall"
)

// attr returns cmd's SysProcAttr, creating it when nil.
func attr(cmd *exec.Cmd) *syscall.SysProcAttr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	return cmd.SysProcAttr
}
