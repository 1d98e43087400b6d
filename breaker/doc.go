// Package breaker is a circuit breaker: it stops calls to a downstream that
// keeps failing, so the caller neither hammers it nor piles up work, and
// lets a few probe calls through to find out when it has recovered.
//
// # States
//
//   - Closed: every call is admitted. Outcomes are counted over a sliding
//     Window. The breaker opens when the last ConsecutiveFailures calls all
//     failed, or when at least MinCalls calls were made within the window
//     and the share of failures reached FailureRate.
//   - Open: every call is refused at once with an *OpenError (errors.Is
//     ErrOpen) saying how long until probes are let through. After OpenFor
//     the breaker turns half-open, on the next call or State.
//   - Half-open: up to Probes calls are admitted at a time. When Probes of
//     them succeeded the breaker closes (with fresh counts); the first that
//     fails opens it again for another OpenFor.
//
// # Guarantees
//
//   - Every state change is reported to the OnStateChange hooks exactly
//     once, in the order the changes happened, outside the breaker's lock
//     (a hook may call the breaker).
//   - An outcome counts only in the state generation its call was admitted
//     in: a slow call admitted while closed that fails after the breaker
//     opened does not reopen or extend anything.
//   - A call cancelled by its context (context.Canceled) is neither a
//     success nor a failure; nor is one given up with Call.Cancel.
//   - Time comes from the Clock option (default time.Now), so every
//     transition can be driven by a test.
//   - A Breaker is safe for concurrent use; one breaker protects one
//     downstream and may be shared by every caller of it.
package breaker
