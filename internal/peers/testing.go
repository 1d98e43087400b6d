package peers

import (
	"context"
	"os"
)

// TB is the part of testing.TB the helpers use; *testing.T and *testing.B
// satisfy it. Taking it instead of a testing.TB keeps package testing out of
// the ksp binary, which imports this package for its benchmarks.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
}

// Required reports whether missing peers must fail tests rather than skip
// them: true in CI (CI=true).
func Required() bool { return os.Getenv("CI") == "true" }

// StartT starts a peer for a test and stops it at cleanup. When the peer
// cannot start the test fails in CI and is skipped elsewhere.
func StartT(t TB, kind Kind, opts Options) *Peer {
	t.Helper()
	p, err := Start(context.Background(), kind, opts)
	if err != nil {
		Unavailable(t, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Unavailable fails the test in CI and skips it elsewhere.
func Unavailable(t TB, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("peer unavailable (CI=true makes this a failure): %v", err)
	}
	t.Skipf("peer unavailable: %v", err)
}
