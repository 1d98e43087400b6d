//go:build !linux

package procattr

import "os/exec"

// KillWithParent does nothing here: only Linux can tie a child's life to
// its parent's.
func KillWithParent(cmd *exec.Cmd) {}
