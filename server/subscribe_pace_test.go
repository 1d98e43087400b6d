package server

import (
	"testing"
	"time"
)

// TestPaceWait: a subscription reads a second's worth (2 MiB) at once, then
// waits for each byte beyond it at 2 MiB/s, and the wait shrinks as time passes.
func TestPaceWait(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(fanOutRate, fanOutRate, t0)
	for _, step := range []struct {
		n    int
		at   time.Duration
		want time.Duration
	}{
		{1 << 20, 0, 0},                      // within the first second's worth
		{1 << 20, 0, 0},                      // the bucket is now empty
		{1 << 20, 0, 500 * time.Millisecond}, // 1 MiB of debt: half a second
		{0, 250 * time.Millisecond, 250 * time.Millisecond}, // a quarter second repaid
		{0, 2 * time.Second, 0},                             // long after: no debt, bucket full again
		{3 << 20, 2 * time.Second, 500 * time.Millisecond},  // 2 MiB burst, 1 MiB of debt
	} {
		if got := paceWait(&b, step.n, t0.Add(step.at)); got != step.want {
			t.Fatalf("charging %d bytes at +%s: wait %s, want %s", step.n, step.at, got, step.want)
		}
	}
}
