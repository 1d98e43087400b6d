package esm

import (
	"time"
)

// Hook is a metrics hook: a value implementing any of the Hook* interfaces,
// which mirror Lambda's event source mapping metrics. Hooks are called from
// the shards' goroutines and must be safe for concurrent use and quick.
type Hook any

// HookInvoke is told about every invoke that ran the function (Lambda's
// Invocations, and Errors when err is a function error) with how many
// records it carried; throttled invokes are outcomes (ResultThrottled).
type HookInvoke interface {
	OnInvoke(shardID string, records int, took time.Duration, err error)
}

// HookIteratorAge is told, before each invoke, the age of the batch's last
// record (Lambda's IteratorAge).
type HookIteratorAge interface {
	OnIteratorAge(shardID string, age time.Duration)
}

// HookEvents is told of each read: records polled and records filtered out
// (PolledEventCount, FilteredOutEventCount).
type HookEvents interface {
	OnEvents(shardID string, polled, filteredOut int)
}

// HookDropped is told when records are given up (DroppedEventCount), with
// the condition, and whether the on-failure delivery failed (one call per
// failed attempt, then one with err nil once delivered; err is nil too
// without a destination).
type HookDropped interface {
	OnDropped(shardID, condition string, records int, err error)
}

type hooks []Hook

func isHook(h Hook) bool {
	switch h.(type) {
	case HookInvoke, HookIteratorAge, HookEvents, HookDropped, HookOutcome:
		return true
	}
	return false
}

func (hs hooks) invoke(shardID string, records int, took time.Duration, err error) {
	for _, h := range hs {
		if h, ok := h.(HookInvoke); ok {
			h.OnInvoke(shardID, records, took, err)
		}
	}
}

func (hs hooks) iteratorAge(shardID string, age time.Duration) {
	for _, h := range hs {
		if h, ok := h.(HookIteratorAge); ok {
			h.OnIteratorAge(shardID, age)
		}
	}
}

func (hs hooks) events(shardID string, polled, filteredOut int) {
	for _, h := range hs {
		if h, ok := h.(HookEvents); ok {
			h.OnEvents(shardID, polled, filteredOut)
		}
	}
}

func (hs hooks) dropped(shardID, condition string, records int, err error) {
	for _, h := range hs {
		if h, ok := h.(HookDropped); ok {
			h.OnDropped(shardID, condition, records, err)
		}
	}
}

// Outcome results, in Outcome.Result.
const (
	ResultSucceeded = "Succeeded"
	// ResultPartialFailure: the response named failed records (the ones
	// before the lowest are checkpointed; it is retried from it).
	ResultPartialFailure = "PartialFailure"
	ResultFunctionError  = "FunctionError"
	// ResultBisected: a function error split the batch in two.
	ResultBisected = "Bisected"
	// ResultThrottled and ResultInvokeError: the invoke did not reach the
	// function (429, or another Invoke API error: see InvokeError); it is
	// retried without spending a retry attempt.
	ResultThrottled   = "Throttled"
	ResultInvokeError = "InvokeError"
	// RetryAttemptsExhausted and RecordAgeExceeded (the conditions of the
	// invocation record) are results too: the records were given up.
)

// Outcome is the end of one invoke, or of records given up.
type Outcome struct {
	ShardID string
	// Records is how many records the invoke carried (or were given up).
	Records int
	Result  string
	// Settled is how many of them it settled: handled (all of them on
	// success, those before the lowest failure of a partial one) or given
	// up.
	Settled int
	// Retries is how many failed invokes these records have spent so far
	// (bisections spend none).
	Retries int
	// Checkpoint is the sequence number of the last record it settled
	// (handled or given up), "" when none (a failure retried whole). It is
	// the shard's checkpoint, except with ParallelizationFactor above 1
	// (the shard is checkpointed up to the records settled in all its
	// batches) and tumbling windows (checkpointed when the window closes).
	Checkpoint string
	// Err is the function error, nil otherwise.
	Err error
}

// HookOutcome is told the outcome of every invoke and every give-up, in
// order per shard (`ksp esm` prints them).
type HookOutcome interface {
	OnOutcome(Outcome)
}

func (hs hooks) outcome(o Outcome) {
	for _, h := range hs {
		if h, ok := h.(HookOutcome); ok {
			h.OnOutcome(o)
		}
	}
}
