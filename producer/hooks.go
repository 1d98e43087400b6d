package producer

import (
	"fmt"
	"slices"
	"time"
)

// Hook is a metrics hook: any value implementing one or more of the Hook*
// interfaces below, checked when the producer is built, so new hook
// interfaces never break existing hooks. Hooks are called synchronously
// from the producer's goroutines (and OnUserRecordReceived from Put): keep
// them fast and safe for concurrent use.
//
// Together they mirror the KPL's metrics: UserRecordsReceived,
// UserRecordsPut, KinesisRecordsPut, UserRecordsPerKinesisRecord,
// BufferingTime, RequestTime, RetriesPerRecord, ErrorsByCode, throttles
// and buffer fill.
type Hook any

// HookUserRecordReceived is called for every record Put accepts.
type HookUserRecordReceived interface {
	OnUserRecordReceived(stream string, bytes int)
}

// UserRecordDone describes a user record's end.
type UserRecordDone struct {
	Stream string
	Result Result
	// Buffered is the time from Put to the first request that carried the
	// record (the KPL's BufferingTime); 0 if it was never sent.
	Buffered time.Duration
	// Latency is the time from Put to the result.
	Latency time.Duration
}

// HookUserRecordDone is called once per user record, when its result is
// in: a success (UserRecordsPut; retries are Result.Attempts−1) or a failure.
type HookUserRecordDone interface {
	OnUserRecordDone(UserRecordDone)
}

// PutRecordsDone describes one PutRecords request.
type PutRecordsDone struct {
	Stream string
	// KinesisRecords and UserRecords are what the request carried; Bytes its
	// data plus partition keys.
	KinesisRecords, UserRecords int
	Bytes                       int
	// PutKinesisRecords and PutUserRecords were accepted; PutBytes is their
	// data plus partition keys (the KPL's KinesisRecordsDataPut).
	PutKinesisRecords, PutUserRecords int
	PutBytes                          int
	// Failed entries, of which Throttled were throttled.
	Failed, Throttled int
	// Duration is the request time.
	Duration time.Duration
	// Err is the error of the request as a whole, if it failed.
	Err error
}

// HookPutRecords is called after every PutRecords request.
type HookPutRecords interface {
	OnPutRecords(PutRecordsDone)
}

// HookError is called for every failed PutRecords entry (with its shard)
// and every failed request (shardID ""), with the AWS error code ("" for
// errors without one, such as network errors).
type HookError interface {
	OnError(stream, shardID, code string)
}

// HookThrottle is called when Kinesis throttles a shard (an entry answered
// ProvisionedThroughputExceededException) and the shard's rate is lowered.
type HookThrottle interface {
	OnThrottle(stream, shardID string)
}

// HookBufferFill is called about every 100 ms while records are buffered,
// and when the buffer empties, with what the budget holds.
type HookBufferFill interface {
	OnBufferFill(stream string, records int, bytes int64)
}

type hooks struct {
	received []HookUserRecordReceived
	done     []HookUserRecordDone
	put      []HookPutRecords
	errs     []HookError
	throttle []HookThrottle
	fill     []HookBufferFill
}

// newHooks sorts hs by the interfaces they implement. A value implementing
// none is refused: it was passed to WithHooks by mistake and would be
// silently ignored.
func newHooks(hs []Hook) (hooks, error) {
	var h hooks
	for i, x := range hs {
		found := [...]bool{
			addHook(&h.received, x), addHook(&h.done, x), addHook(&h.put, x),
			addHook(&h.errs, x), addHook(&h.throttle, x), addHook(&h.fill, x),
		}
		if !slices.Contains(found[:], true) {
			return hooks{}, fmt.Errorf("producer: hook %d (%T) implements no Hook interface", i, x)
		}
	}
	return h, nil
}

// addHook appends x to list when it implements T, and reports whether it did.
func addHook[T any](list *[]T, x Hook) bool {
	v, ok := x.(T)
	if ok {
		*list = append(*list, v)
	}
	return ok
}
