package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/breaker"
)

// A breaker opens after three failures in a row, refuses calls while open,
// lets a probe through after OpenFor, and closes when it succeeds. The
// clock is a variable here so the example runs instantly.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := breaker.New(
		breaker.Name("payments"),
		breaker.ConsecutiveFailures(3),
		breaker.OpenFor(30*time.Second),
		breaker.Clock(func() time.Time { return now }),
		breaker.OnStateChange(func(c breaker.Change) { fmt.Printf("%v -> %v: %s\n", c.From, c.To, c.Reason) }),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	down := errors.New("payments: 503")
	for range 3 {
		_ = b.Do(ctx, func(context.Context) error { return down })
	}
	err = b.Do(ctx, func(context.Context) error { return nil })
	fmt.Println(errors.Is(err, breaker.ErrOpen), err)

	now = now.Add(30 * time.Second)
	_ = b.Do(ctx, func(context.Context) error { return nil }) // the probe
	fmt.Println(b.State())
	// Output:
	// closed -> open: 3 consecutive failures
	// true breaker payments: open, probes in 30s
	// open -> half-open: open for 30s
	// half-open -> closed: probes succeeded (1)
	// closed
}
