package consumer

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff returns the pause before retry number attempt (0-based): base
// doubled per attempt, capped at limit, with ±25% jitter so workers retrying
// together spread out.
func backoff(base, limit time.Duration, attempt int) time.Duration {
	if base <= 0 {
		base = time.Millisecond
	}
	d := base
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return max(d+jitter, time.Millisecond)
}

// sleep waits for d or until ctx ends, and reports whether the full pause
// elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
