package peers

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// LookPath is exec.LookPath, except that a pyenv shim is resolved to the
// program it runs: a shim starts bash and pyenv to pick the Python version,
// about a second per call on a loaded machine, which tests that run a Python
// tool (the aws CLI) many times would pay on every call.
func LookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil || filepath.Base(filepath.Dir(path)) != "shims" || !strings.Contains(path, "pyenv") {
		return path, err
	}
	out, err := exec.Command("pyenv", "which", name).Output()
	if real := strings.TrimSpace(string(out)); err == nil && real != "" {
		return real, nil
	}
	return path, nil // the shim still works, only slower
}
