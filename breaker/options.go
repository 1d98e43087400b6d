package breaker

import (
	"errors"
	"fmt"
	"time"
)

// Option configures a Breaker; pass options to New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name        string
	consecutive int
	rate        float64
	minCalls    int
	window      time.Duration
	openFor     time.Duration
	probes      int
	now         func() time.Time
	hooks       []func(Change)
	isFailure   func(error) bool
}

func defaultConfig() config {
	return config{
		name:        "breaker",
		consecutive: 5,
		window:      10 * time.Second,
		openFor:     5 * time.Second,
		probes:      1,
		now:         time.Now,
		isFailure:   func(err error) bool { return err != nil },
	}
}

// Name names the breaker in errors and state changes. Default "breaker".
func Name(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// ConsecutiveFailures opens the breaker after n failures in a row while
// closed; 0 turns this trigger off. Default 5.
func ConsecutiveFailures(n int) Option { return optionFunc(func(c *config) { c.consecutive = n }) }

// FailureRate opens the breaker when at least minCalls calls ended within
// the Window and at least rate (0 < rate ≤ 1) of them failed. Rate 1 means
// "every call failed". Default off.
func FailureRate(rate float64, minCalls int) Option {
	return optionFunc(func(c *config) { c.rate, c.minCalls = rate, minCalls })
}

// Window is how far back FailureRate looks (it slides in tenths of it).
// Default 10 s.
func Window(d time.Duration) Option { return optionFunc(func(c *config) { c.window = d }) }

// OpenFor is how long the breaker stays open before letting probes
// through. Default 5 s.
func OpenFor(d time.Duration) Option { return optionFunc(func(c *config) { c.openFor = d }) }

// Probes is how many calls a half-open breaker admits at once, and how many
// must succeed to close it. Default 1.
func Probes(n int) Option { return optionFunc(func(c *config) { c.probes = n }) }

// Clock sets where the breaker reads the time. Default time.Now.
func Clock(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }

// OnStateChange adds a hook told about every transition (see Change); hooks
// run one at a time, in the order of the transitions. Default none.
func OnStateChange(f func(Change)) Option {
	return optionFunc(func(c *config) { c.hooks = append(c.hooks, f) })
}

// IsFailure decides which errors count as failures of the downstream (an
// error it does not count is a success: the downstream answered). Default:
// every non-nil error. context.Canceled never counts either way.
func IsFailure(f func(error) bool) Option { return optionFunc(func(c *config) { c.isFailure = f }) }

func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("breaker: "+format, args...)) }
	if c.consecutive < 0 {
		bad("consecutive failures %d is negative", c.consecutive)
	}
	if c.rate < 0 || c.rate > 1 {
		bad("failure rate %v is outside 0…1", c.rate)
	}
	if c.rate > 0 && c.minCalls < 1 {
		bad("failure rate minimum calls %d is below 1", c.minCalls)
	}
	if c.consecutive == 0 && c.rate == 0 {
		bad("no trigger: set ConsecutiveFailures above 0 or a FailureRate")
	}
	if c.window < buckets*time.Millisecond {
		bad("window %v is below %v", c.window, buckets*time.Millisecond)
	}
	if c.openFor <= 0 {
		bad("open time %v is not positive", c.openFor)
	}
	if c.probes < 1 {
		bad("probes %d is below 1", c.probes)
	}
	if c.now == nil {
		bad("nil clock")
	}
	if c.isFailure == nil {
		bad("nil IsFailure")
	}
	for i, h := range c.hooks {
		if h == nil {
			bad("state change hook %d is nil", i)
		}
	}
	return errors.Join(errs...)
}
