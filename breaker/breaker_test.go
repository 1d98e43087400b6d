package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/breaker"
)

var errDown = errors.New("downstream down")

// clock is a controlled clock.
type clock struct {
	mu  sync.Mutex // guards: now
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder keeps the state changes told to the hook.
type recorder struct {
	mu      sync.Mutex // guards: changes
	changes []string
}

func (r *recorder) hook(c breaker.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, fmt.Sprintf("%v->%v (%s)", c.From, c.To, c.Reason))
}

func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Join(r.changes, "; ") != strings.Join(want, "; ") {
		t.Fatalf("state changes:\n got %q\nwant %q", r.changes, want)
	}
}

func newBreaker(t *testing.T, clk *clock, rec *recorder, opts ...breaker.Option) *breaker.Breaker {
	t.Helper()
	b, err := breaker.New(append([]breaker.Option{breaker.Name("down"), breaker.Clock(clk.Now), breaker.OnStateChange(rec.hook)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call makes one call with outcome err and fails the test on a refusal.
func call(t *testing.T, b *breaker.Breaker, err error) {
	t.Helper()
	c, aerr := b.Allow()
	if aerr != nil {
		t.Fatalf("refused in state %v: %v", b.State(), aerr)
	}
	c.Done(err)
}

func expectRefused(t *testing.T, b *breaker.Breaker, state breaker.State, retryAfter time.Duration) {
	t.Helper()
	_, err := b.Allow()
	var oe *breaker.OpenError
	if !errors.Is(err, breaker.ErrOpen) || !errors.As(err, &oe) || oe.State != state || oe.RetryAfter != retryAfter || oe.Name != "down" {
		t.Fatalf("Allow: %v, want an OpenError in state %v retrying after %v", err, state, retryAfter)
	}
	if rerr := b.Ready(); rerr == nil || rerr.Error() != err.Error() {
		t.Fatalf("Ready: %v, want %v", rerr, err)
	}
}

// Closed → open on consecutive failures; open refuses with the time left;
// half-open after OpenFor admits one probe; a failed probe reopens; two
// successful probes close.
func TestConsecutiveFailuresFullCycle(t *testing.T) {
	clk, rec := newClock(), &recorder{}
	b := newBreaker(t, clk, rec, breaker.ConsecutiveFailures(3), breaker.OpenFor(time.Second), breaker.Probes(2))
	call(t, b, errDown)
	call(t, b, errDown)
	call(t, b, nil) // a success resets the run
	call(t, b, errDown)
	call(t, b, errDown)
	if b.State() != breaker.Closed {
		t.Fatal("opened before 3 consecutive failures")
	}
	call(t, b, errDown)
	rec.expect(t, "closed->open (3 consecutive failures)")
	expectRefused(t, b, breaker.Open, time.Second)
	clk.Advance(999 * time.Millisecond)
	expectRefused(t, b, breaker.Open, time.Millisecond)

	clk.Advance(time.Millisecond)
	p1, err := b.Allow()
	if err != nil || b.State() != breaker.HalfOpen {
		t.Fatalf("after OpenFor: %v in %v", err, b.State())
	}
	p2, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	expectRefused(t, b, breaker.HalfOpen, 0) // both probe slots taken
	p1.Done(nil)
	p2.Done(errDown)
	rec.expect(t, "closed->open (3 consecutive failures)", "open->half-open (open for 1s)", "half-open->open (probe failed)")
	expectRefused(t, b, breaker.Open, time.Second)

	clk.Advance(time.Second)
	call(t, b, nil)
	if b.State() != breaker.HalfOpen {
		t.Fatalf("closed after 1 of 2 probes")
	}
	call(t, b, nil)
	rec.expect(t, "closed->open (3 consecutive failures)", "open->half-open (open for 1s)", "half-open->open (probe failed)",
		"open->half-open (open for 1s)", "half-open->closed (probes succeeded (2))")
	// Closed with fresh counts: two failures do not reopen it.
	call(t, b, errDown)
	call(t, b, errDown)
	if s := b.Stats(); s.State != breaker.Closed || s.Opened != 2 || s.Rejected != 4 || s.Calls != 12 || s.Failures != 8 {
		t.Fatalf("stats %+v", s)
	}
}

// Closed → open on the failure rate only once the minimum of calls is in
// the window, and failures that slid out of the window no longer count.
func TestFailureRateOverWindow(t *testing.T) {
	clk, rec := newClock(), &recorder{}
	b := newBreaker(t, clk, rec, breaker.ConsecutiveFailures(0), breaker.FailureRate(0.5, 4), breaker.Window(10*time.Second))
	for range 3 {
		call(t, b, errDown) // 3 of 3 failed, but under the minimum
	}
	clk.Advance(11 * time.Second) // they slide out
	call(t, b, errDown)
	call(t, b, nil)
	call(t, b, nil)
	if b.State() != breaker.Closed {
		t.Fatal("opened on failures that left the window")
	}
	call(t, b, errDown) // 2 of 4
	rec.expect(t, "closed->open (2 of 4 calls failed within 10s)")
}

// FailureRate(1, n): open only when every call in the window failed.
func TestFailureRateEveryCall(t *testing.T) {
	clk, rec := newClock(), &recorder{}
	b := newBreaker(t, clk, rec, breaker.ConsecutiveFailures(0), breaker.FailureRate(1, 3), breaker.Window(time.Second))
	call(t, b, nil)
	for range 3 {
		call(t, b, errDown)
	}
	if b.State() != breaker.Closed {
		t.Fatal("opened although a call in the window succeeded")
	}
	clk.Advance(time.Second) // the success slides out, the failures too
	for range 3 {
		call(t, b, errDown)
	}
	rec.expect(t, "closed->open (3 of 3 calls failed within 1s)")
}

// Outcomes of calls admitted in an earlier state are ignored; cancelled
// calls count neither way and free their probe slot.
func TestStaleAndCancelledOutcomes(t *testing.T) {
	clk, rec := newClock(), &recorder{}
	b := newBreaker(t, clk, rec, breaker.ConsecutiveFailures(1), breaker.OpenFor(time.Second))
	slow, _ := b.Allow()
	call(t, b, errDown) // opens
	clk.Advance(time.Second)
	probe, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	slow.Done(errDown) // admitted while closed: ignored
	if b.State() != breaker.HalfOpen {
		t.Fatalf("a stale failure moved the breaker to %v", b.State())
	}
	probe.Done(context.Canceled) // neither: frees the slot
	probe.Done(errDown)          // a second end is ignored
	c, err := b.Allow()
	if err != nil {
		t.Fatalf("the cancelled probe kept its slot: %v", err)
	}
	c.Cancel()
	call(t, b, nil)
	rec.expect(t, "closed->open (1 consecutive failures)", "open->half-open (open for 1s)", "half-open->closed (probes succeeded (1))")
}

// IsFailure decides what counts; Do refuses without calling fn.
func TestIsFailureAndDo(t *testing.T) {
	clk, rec := newClock(), &recorder{}
	notMine := errors.New("bad request")
	b := newBreaker(t, clk, rec, breaker.ConsecutiveFailures(2), breaker.IsFailure(func(err error) bool { return err != nil && !errors.Is(err, notMine) }))
	for range 3 {
		if err := b.Do(t.Context(), func(context.Context) error { return notMine }); err != notMine {
			t.Fatal(err)
		}
	}
	if b.State() != breaker.Closed {
		t.Fatal("errors IsFailure rejects opened the breaker")
	}
	for range 2 {
		_ = b.Do(t.Context(), func(context.Context) error { return errDown })
	}
	called := false
	if err := b.Do(t.Context(), func(context.Context) error { called = true; return nil }); !errors.Is(err, breaker.ErrOpen) || called {
		t.Fatalf("Do on an open breaker: %v, called %v", err, called)
	}
}

// A hook may call the breaker, and changes made meanwhile by other
// goroutines are told in order, each once.
func TestHooksInOrderAndReentrant(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	var seen []breaker.State
	var b *breaker.Breaker
	b, err := breaker.New(breaker.Clock(clk.Now), breaker.ConsecutiveFailures(1), breaker.OpenFor(time.Millisecond),
		breaker.OnStateChange(func(c breaker.Change) {
			_ = b.State() // re-entering must not deadlock
			mu.Lock()
			defer mu.Unlock()
			if len(seen) > 0 && seen[len(seen)-1] != c.From {
				t.Errorf("change %v->%v told after one to %v", c.From, c.To, seen[len(seen)-1])
			}
			seen = append(seen, c.To)
		}))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if c, err := b.Allow(); err == nil {
					c.Done(errDown)
				}
				clk.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
	b.State()
	mu.Lock()
	defer mu.Unlock()
	if opened := b.Stats().Opened; len(seen) < 2 || int64(countOf(seen, breaker.Open)) != opened {
		t.Fatalf("%d changes told, %d to open; the breaker opened %d times", len(seen), countOf(seen, breaker.Open), opened)
	}
}

func countOf(s []breaker.State, x breaker.State) int {
	n := 0
	for _, v := range s {
		if v == x {
			n++
		}
	}
	return n
}

func TestWaitReturnsWhenProbesAreLetThrough(t *testing.T) {
	b, err := breaker.New(breaker.ConsecutiveFailures(1), breaker.OpenFor(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Do(t.Context(), func(context.Context) error { return errDown })
	if err := b.Wait(t.Context()); err != nil || b.State() != breaker.HalfOpen {
		t.Fatalf("Wait: %v, state %v", err, b.State())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_ = b.Do(t.Context(), func(context.Context) error { return errDown }) // the probe fails: open again
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context: %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		opt  breaker.Option
		want string
	}{
		{breaker.ConsecutiveFailures(-1), "consecutive failures -1 is negative"},
		{breaker.FailureRate(1.5, 3), "failure rate 1.5 is outside 0…1"},
		{breaker.FailureRate(0.5, 0), "failure rate minimum calls 0 is below 1"},
		{breaker.Window(time.Millisecond), "window 1ms is below 10ms"},
		{breaker.OpenFor(0), "open time 0s is not positive"},
		{breaker.Probes(0), "probes 0 is below 1"},
		{breaker.Clock(nil), "nil clock"},
		{breaker.OnStateChange(nil), "state change hook 0 is nil"},
	} {
		if _, err := breaker.New(tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	if _, err := breaker.New(breaker.ConsecutiveFailures(0)); err == nil || !strings.Contains(err.Error(), "no trigger") {
		t.Errorf("no trigger: %v", err)
	}
}
