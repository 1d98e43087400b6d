package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDelayBounds checks the doubling, the cap and the jitter band over many
// draws: every pause lies in [d/2, d] for d = min(base·2^retry, limit), and
// the draws are spread, not constant.
func TestDelayBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base, limit time.Duration
		retry       int
		want        time.Duration // the pause before jitter
	}{
		{10 * time.Millisecond, time.Second, 0, 10 * time.Millisecond},
		{10 * time.Millisecond, time.Second, 3, 80 * time.Millisecond},
		{10 * time.Millisecond, time.Second, 7, time.Second},
		{10 * time.Millisecond, time.Second, 1000, time.Second},
		{0, 0, 0, time.Millisecond},
		{time.Second, time.Millisecond, 5, time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := Delay(tc.base, tc.limit, tc.retry)
			if d < tc.want/2 || d > tc.want {
				t.Fatalf("Delay(%v, %v, %d) = %v, want within [%v, %v]", tc.base, tc.limit, tc.retry, d, tc.want/2, tc.want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Delay(%v, %v, %d): %d distinct values in 200 draws, want jitter", tc.base, tc.limit, tc.retry, len(seen))
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a canceled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Microsecond); err != nil {
		t.Fatalf("Sleep = %v, want nil after the pause", err)
	}
}
