//go:build !unix

package consumer

// cpuShare cannot measure the process's CPU here: the worker reports the
// KCL's default worker metric (no metric), and a leader balances it by
// lease throughput.
type cpuShare struct{}

func newCPUShare() *cpuShare { return &cpuShare{} }

func (*cpuShare) sample() (float64, bool) { return 0, false }
