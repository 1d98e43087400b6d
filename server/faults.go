package server

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ksp-project/ksp/kds"
)

// Faults are failures the server injects on purpose, to test how clients
// cope with a slow, failing or throttling Kinesis.
type Faults struct {
	// Latency is added before every request is handled.
	Latency time.Duration
	// ErrorRate maps an operation name ("PutRecords", or "*" for all) to the
	// probability (0…1) that a call fails as a whole with ErrorCode.
	ErrorRate map[string]float64
	// ErrorCode is the AWS error code of injected failures (default
	// InternalFailure; ServiceUnavailable and ProvisionedThroughputExceededException are useful too).
	ErrorCode string
	// Throttle lists shards, as "stream/shardId-000000000001" (or "stream/*"),
	// whose writes and reads always fail with ProvisionedThroughputExceededException.
	Throttle []string
}

// Validate refuses what would silently never fire: an operation name ksp
// does not serve (a typo such as "PutRecrd") or an error code that is not an
// AWS Kinesis error code.
func (f *Faults) Validate() error {
	for op, p := range f.ErrorRate {
		if fn, known := operations[op]; op != "*" && (!known || fn == nil) {
			return fmt.Errorf("server: fault error rate for unknown operation %q: want an operation ksp serves (such as PutRecords) or *", op)
		}
		if p < 0 || p > 1 {
			return fmt.Errorf("server: fault error rate for %s is %v, want 0..1", op, p)
		}
	}
	if f.ErrorCode != "" && !kds.KnownCode(f.ErrorCode) {
		return fmt.Errorf("server: fault error code %q is not an AWS Kinesis error code (such as InternalFailure, ServiceUnavailable, ProvisionedThroughputExceededException)", f.ErrorCode)
	}
	for _, t := range f.Throttle {
		if name, shard, ok := strings.Cut(t, "/"); !ok || name == "" || shard == "" {
			return fmt.Errorf("server: fault throttle %q: want STREAM/SHARD_ID or STREAM/*", t)
		}
	}
	return nil
}

// injectedError returns the error to fail op with, or nil.
func (f *Faults) injectedError(op string) error {
	p, ok := f.ErrorRate[op]
	if !ok {
		p = f.ErrorRate["*"]
	}
	if p <= 0 || rand.Float64() >= p {
		return nil
	}
	code := f.ErrorCode
	if code == "" {
		code = kds.ErrCodeInternalFailure
	}
	return kds.Errorf(code, "injected fault for %s", op)
}

// throttled reports whether a shard is forced to throttle.
func (f *Faults) throttled(stream, shardID string) bool {
	for _, t := range f.Throttle {
		name, shard, _ := strings.Cut(t, "/")
		if name == stream && (shard == "*" || shard == shardID) {
			return true
		}
	}
	return false
}
