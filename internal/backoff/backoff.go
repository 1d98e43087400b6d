// Package backoff is the one retry pause of ksp's clients: exponential from
// a base, capped, with jitter so clients that failed together do not retry
// together.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the pause before retry number retry (0 for the first):
// base doubled per retry and capped at limit, then drawn uniformly from its
// upper half ("equal jitter"), so it never exceeds limit and never falls
// below half the exponential value. A base under 1 ms counts as 1 ms; a
// limit under base counts as base.
func Delay(base, limit time.Duration, retry int) time.Duration {
	base = max(base, time.Millisecond)
	limit = max(limit, base)
	d := base
	for i := 0; i < retry && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx ends; it returns ctx's error in that case and
// nil after the full pause.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
