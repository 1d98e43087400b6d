package sdkhttp

import "testing"

// DisableFix makes Fix a pass-through until the test ends, to show the bug.
func DisableFix(t testing.TB) {
	disabled.Store(true)
	t.Cleanup(func() { disabled.Store(false) })
}
