package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// State is a breaker's state.
type State int

// The states, in the order a tripping breaker goes through them.
const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ErrOpen is matched (errors.Is) by every refusal: the breaker is open, or
// half-open with every probe slot taken.
var ErrOpen = errors.New("breaker: open")

// OpenError is the error a refused call gets.
type OpenError struct {
	Name  string // the breaker's Name
	State State  // Open, or HalfOpen when every probe slot was taken
	// RetryAfter is how long until the breaker lets probes through (0 when
	// half-open: a probe slot frees when a probe ends).
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	if e.State == HalfOpen {
		return fmt.Sprintf("breaker %s: half-open, every probe slot is taken", e.Name)
	}
	return fmt.Sprintf("breaker %s: open, probes in %v", e.Name, e.RetryAfter)
}

// Is makes errors.Is(err, ErrOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Change is one state transition, as told to OnStateChange hooks.
type Change struct {
	Name     string
	From, To State
	At       time.Time // by the breaker's clock
	// Reason says why, e.g. "5 consecutive failures", "6 of 10 calls
	// failed within 10s", "open for 5s", "probes succeeded (2)", "probe
	// failed".
	Reason string
}

// Stats are running totals since New.
type Stats struct {
	State    State
	Calls    int64 // admitted
	Failures int64 // admitted calls that failed
	Rejected int64 // refused with ErrOpen
	Opened   int64 // transitions to Open
}

// Breaker is a circuit breaker; see the package documentation.
type Breaker struct {
	cfg config

	mu       sync.Mutex // guards: state, gen, openedAt, consec, win, probing, probed, stats, pending
	state    State
	gen      uint64    // bumped by every transition
	openedAt time.Time // when the breaker last opened
	consec   int       // consecutive failures while closed
	win      window
	probing  int // probes admitted and not yet ended, while half-open
	probed   int // probes that succeeded, while half-open
	stats    Stats
	pending  []Change // transitions not yet told to the hooks

	hookMu sync.Mutex // held while hooks run, so they run one at a time, in order

	closed atomic.Bool // state == Closed, for Ready without mu (a producer asks per record)
}

// New returns a closed breaker. Invalid options are refused with an error
// naming each one and its value.
func New(opts ...Option) (*Breaker, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Breaker{cfg: cfg}
	b.win = newWindow(cfg.window, cfg.now())
	b.closed.Store(true)
	return b, nil
}

// Name is the breaker's name (the Name option).
func (b *Breaker) Name() string { return b.cfg.name }

// State returns the current state, turning an open breaker half-open once
// OpenFor has passed.
func (b *Breaker) State() State {
	b.mu.Lock()
	b.advanceLocked(b.cfg.now())
	s := b.state
	b.mu.Unlock()
	b.notify()
	return s
}

// Stats returns the running totals.
func (b *Breaker) Stats() Stats {
	b.mu.Lock()
	b.advanceLocked(b.cfg.now())
	s := b.stats
	s.State = b.state
	b.mu.Unlock()
	b.notify()
	return s
}

// Ready reports, without taking a probe slot, whether a call would be
// admitted now: nil, or the *OpenError Allow would return.
func (b *Breaker) Ready() error {
	if b.closed.Load() { // closed lets every call through; only calls change that
		return nil
	}
	b.mu.Lock()
	err := b.refusalLocked(b.cfg.now())
	b.mu.Unlock()
	b.notify()
	return err
}

// Call is an admitted call; end it with exactly one Done or Cancel (later
// ones are ignored).
type Call struct {
	b     *Breaker
	gen   uint64
	probe bool
	once  sync.Once
}

// Allow admits a call, or refuses it with an *OpenError.
func (b *Breaker) Allow() (*Call, error) {
	b.mu.Lock()
	now := b.cfg.now()
	if err := b.refusalLocked(now); err != nil {
		b.stats.Rejected++
		b.mu.Unlock()
		b.notify()
		return nil, err
	}
	c := &Call{b: b, gen: b.gen, probe: b.state == HalfOpen}
	if c.probe {
		b.probing++
	}
	b.stats.Calls++
	b.mu.Unlock()
	b.notify()
	return c, nil
}

// Done records the call's outcome: a failure when err is one by the
// IsFailure option (default: any error), nothing when err is
// context.Canceled.
func (c *Call) Done(err error) {
	c.once.Do(func() { c.b.end(c, err, false) })
}

// Cancel ends a call that was never made, recording nothing and freeing
// its probe slot.
func (c *Call) Cancel() {
	c.once.Do(func() { c.b.end(c, nil, true) })
}

// Do runs fn when the breaker admits it and records its outcome; a refusal
// returns the *OpenError without calling fn.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	c, err := b.Allow()
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			c.Done(fmt.Errorf("panic: %v", p))
			panic(p)
		}
	}()
	err = fn(ctx)
	c.Done(err)
	return err
}

// Wait blocks until a call would be admitted (see Ready) or ctx ends,
// sleeping on the real clock.
func (b *Breaker) Wait(ctx context.Context) error {
	for {
		err := b.Ready()
		if err == nil {
			return nil
		}
		var oe *OpenError
		d := 10 * time.Millisecond // half-open with every slot taken: poll
		if errors.As(err, &oe) && oe.RetryAfter > 0 {
			d = oe.RetryAfter
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}

func (b *Breaker) end(c *Call, err error, cancelled bool) {
	b.mu.Lock()
	defer b.notify()
	defer b.mu.Unlock()
	now := b.cfg.now()
	if c.gen != b.gen {
		return // admitted in an earlier state: its outcome says nothing now
	}
	if c.probe {
		b.probing--
	}
	if cancelled || errors.Is(err, context.Canceled) {
		return
	}
	failed := b.cfg.isFailure(err)
	if failed {
		b.stats.Failures++
	}
	switch b.state {
	case Closed:
		b.win.add(now, failed)
		if !failed {
			b.consec = 0
			return
		}
		b.consec++
		if n := b.cfg.consecutive; n > 0 && b.consec >= n {
			b.toLocked(Open, now, fmt.Sprintf("%d consecutive failures", b.consec))
			return
		}
		if b.cfg.rate > 0 {
			calls, fails := b.win.counts(now)
			if calls >= b.cfg.minCalls && float64(fails) >= b.cfg.rate*float64(calls) {
				b.toLocked(Open, now, fmt.Sprintf("%d of %d calls failed within %v", fails, calls, b.cfg.window))
			}
		}
	case HalfOpen:
		if failed {
			b.toLocked(Open, now, "probe failed")
			return
		}
		if b.probed++; b.probed >= b.cfg.probes {
			b.toLocked(Closed, now, fmt.Sprintf("probes succeeded (%d)", b.probed))
		}
	}
}

// advanceLocked turns an open breaker half-open once OpenFor has passed.
func (b *Breaker) advanceLocked(now time.Time) {
	if b.state == Open && !now.Before(b.openedAt.Add(b.cfg.openFor)) {
		b.toLocked(HalfOpen, now, fmt.Sprintf("open for %v", b.cfg.openFor))
	}
}

// refusalLocked is the error a call made now gets, or nil.
func (b *Breaker) refusalLocked(now time.Time) error {
	b.advanceLocked(now)
	switch {
	case b.state == Open:
		return &OpenError{Name: b.cfg.name, State: Open, RetryAfter: b.openedAt.Add(b.cfg.openFor).Sub(now)}
	case b.state == HalfOpen && b.probing >= b.cfg.probes:
		return &OpenError{Name: b.cfg.name, State: HalfOpen}
	}
	return nil
}

func (b *Breaker) toLocked(to State, now time.Time, reason string) {
	if len(b.cfg.hooks) > 0 {
		b.pending = append(b.pending, Change{Name: b.cfg.name, From: b.state, To: to, At: now, Reason: reason})
	}
	b.state = to
	b.closed.Store(to == Closed)
	b.gen++
	b.probing, b.probed, b.consec = 0, 0, 0
	switch to {
	case Open:
		b.openedAt = now
		b.stats.Opened++
	case Closed:
		b.win = newWindow(b.cfg.window, now)
	}
}

// notify tells the hooks about pending transitions. Whoever holds hookMu
// drains the queue until it is empty, so changes queued meanwhile (by a
// hook, or by another goroutine that found hookMu taken) are told in order.
func (b *Breaker) notify() {
	if len(b.cfg.hooks) == 0 {
		return
	}
	for {
		if !b.hookMu.TryLock() {
			return // the holder drains what we queued
		}
		func() {
			defer b.hookMu.Unlock()
			b.mu.Lock()
			list := b.pending
			b.pending = nil
			b.mu.Unlock()
			b.tell(list)
		}()
		b.mu.Lock()
		more := len(b.pending) > 0
		b.mu.Unlock()
		if !more {
			return
		}
	}
}

func (b *Breaker) tell(list []Change) {
	for _, c := range list {
		for _, h := range b.cfg.hooks {
			h(c)
		}
	}
}
