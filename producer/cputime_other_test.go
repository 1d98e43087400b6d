//go:build !unix

package producer_test

// cpuSeconds is unknown here: BenchmarkPut reports no CPU time.
func cpuSeconds() float64 { return -1 }
