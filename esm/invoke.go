package esm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Handler is one of the signatures aws-lambda-go's lambda.Start takes for a
// Kinesis function: with a partial batch response, without, or the
// tumbling-window one (which gets the window and its state, and returns
// the new state).
type Handler interface {
	func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) |
		func(context.Context, events.KinesisEvent) error |
		func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error)
}

// ErrUnsupported reports a valid mapping setting ksp does not implement yet.
var ErrUnsupported = errors.New("esm: not supported yet")

// InvokeError is an invoke that did not run the function: the Lambda
// Invoke API answered with an error of its own (429 TooManyRequestsException
// when throttled, a 5xx service error, or another of the API's errors), or
// the request never reached it. As Lambda's event source mapping does, Run
// retries such an invoke with back-off, without spending retry attempts,
// until the records expire (MaximumRecordAgeInSeconds). InvokeHTTP returns
// it; an in-process handler may return one (wrapped or not) to simulate a
// throttle.
type InvokeError struct {
	StatusCode int    // the HTTP status; 0 when no answer came
	Type       string // the X-Amzn-ErrorType, e.g. TooManyRequestsException
	Message    string
}

func (e *InvokeError) Error() string {
	if e.StatusCode == 0 {
		return "invoke failed: " + e.Message
	}
	return strings.TrimSpace(fmt.Sprintf("invoke answered %d %s", e.StatusCode, e.Type)) + ": " + e.Message
}

// Throttled reports a 429 (TooManyRequestsException) answer.
func (e *InvokeError) Throttled() bool { return e.StatusCode == http.StatusTooManyRequests }

// errFunction marks an invoke that failed: the handler returned an error,
// panicked or ran past the function timeout.
var errFunction = errors.New("function error")

// invoker calls the handler as Lambda would: one invoke at a time per shard,
// bounded by the function timeout, a panic caught as a function error.
type invoker struct {
	// fn takes the tumbling-window form; the other handlers are adapted
	// to it (they see no window fields, as they would not in Go on Lambda).
	fn      func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error)
	timeout time.Duration
	// running tracks invokes still running after their timeout: Go cannot
	// kill them the way Lambda kills a function, so Run waits for them.
	running *sync.WaitGroup
}

func newInvoker[H Handler](h H, timeout time.Duration, running *sync.WaitGroup) invoker {
	inv := invoker{timeout: timeout, running: running}
	switch h := any(h).(type) {
	case func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error):
		inv.fn = func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
			resp, err := h(ctx, ev.KinesisEvent)
			return events.KinesisTimeWindowEventResponse{BatchItemFailures: resp.BatchItemFailures}, err
		}
	case func(context.Context, events.KinesisEvent) error:
		inv.fn = func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
			return events.KinesisTimeWindowEventResponse{}, h(ctx, ev.KinesisEvent)
		}
	case func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error):
		inv.fn = h
	}
	return inv
}

type invokeResult struct {
	resp events.KinesisTimeWindowEventResponse
	err  error
}

// invoke runs one invoke. The error wraps errFunction for a function error,
// or is an *InvokeError; any other error is ctx's.
func (inv invoker) invoke(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	ictx, cancel := context.WithTimeout(ctx, inv.timeout)
	defer cancel()
	done := make(chan invokeResult, 1)
	inv.running.Add(1)
	go func() {
		defer inv.running.Done()
		var res invokeResult
		defer func() {
			if p := recover(); p != nil {
				res = invokeResult{err: fmt.Errorf("%w: panic: %v", errFunction, p)}
			}
			done <- res
		}()
		res.resp, res.err = inv.fn(ictx, ev)
		if ie := (*InvokeError)(nil); res.err != nil && !errors.As(res.err, &ie) {
			res.err = fmt.Errorf("%w: %w", errFunction, res.err)
		}
	}()
	select {
	case res := <-done:
		if ctx.Err() != nil {
			return res.resp, ctx.Err() // shutting down: not the function's fault
		}
		if res.err == nil && ictx.Err() != nil && ctx.Err() == nil {
			// Returned, but after the timeout: Lambda would have cut it off.
			return res.resp, fmt.Errorf("%w: timed out after %v", errFunction, inv.timeout)
		}
		return res.resp, res.err
	case <-ictx.Done():
		if ctx.Err() != nil {
			return events.KinesisTimeWindowEventResponse{}, ctx.Err()
		}
		return events.KinesisTimeWindowEventResponse{}, fmt.Errorf("%w: timed out after %v", errFunction, inv.timeout)
	}
}
