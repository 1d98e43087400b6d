//go:build unix

package consumer

import (
	"runtime"
	"syscall"
	"time"
)

// processStart is about when the process started: the first sample covers
// the CPU the process used since.
var processStart = time.Now()

// cpuShare measures the share of the machine's CPUs this process used
// between two samples, in percent (the KCL's CPU metric "C" measures the
// host or container; ksp reports what it itself uses, which is what moving
// a lease to it or from it changes).
type cpuShare struct {
	cpu  time.Duration
	wall time.Time
}

func newCPUShare() *cpuShare { return &cpuShare{wall: processStart} }

func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// sample returns the share since the last sample; false when it cannot be
// measured, and the metric is then left out (the KCL's default worker
// metric), never reported as a made-up value.
func (c *cpuShare) sample() (float64, bool) {
	used, ok := processCPU()
	if !ok {
		return 0, false
	}
	now := time.Now()
	wall := now.Sub(c.wall) * time.Duration(runtime.NumCPU())
	share := 0.0
	if wall > 0 {
		share = min(100, 100*float64(used-c.cpu)/float64(wall))
	}
	c.cpu, c.wall = used, now
	return share, true
}
