package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ksp-project/ksp/kds"
)

var (
	// ErrClosed: Put after Close, or a record still unsent when Close's
	// context ended (then wrapping the last cause).
	ErrClosed = errors.New("producer: closed")
	// ErrBufferFull: the buffer budget is used up and the policy is FailFast.
	ErrBufferFull = errors.New("producer: buffer full")
	// ErrRecordExpired: the record was not put within the RecordTTL; the
	// error wraps the last cause.
	ErrRecordExpired = errors.New("producer: record expired")
)

// Record is one user record.
type Record struct {
	// PartitionKey is required: 1 to 256 Unicode characters. Without an
	// ExplicitHashKey, its MD5 picks the shard.
	PartitionKey string
	// ExplicitHashKey, when not "", picks the shard instead: a decimal in
	// 0…2^128−1.
	ExplicitHashKey string
	// Data is the payload. Put does not copy it: leave it unchanged until
	// the record's result is in.
	Data []byte
}

// Result is how a user record ended: put (Err nil) or failed.
type Result struct {
	// ShardID and SequenceNumber are those of the Kinesis record that
	// carries the user record; records aggregated together share them.
	ShardID        string
	SequenceNumber string
	// SubSequenceNumber is the user record's position in its aggregated
	// Kinesis record (0 when sent alone), as consumers see it after
	// deaggregation.
	SubSequenceNumber int64
	// Aggregated reports that the record was sent inside an aggregate of
	// two or more user records.
	Aggregated bool
	// Attempts is how many PutRecords requests carried the record.
	Attempts int
	// Err is nil on success; else ErrRecordExpired, ErrClosed, a
	// non-retryable Kinesis error, each wrapping the cause where there is one.
	Err error
}

// Pending is the handle of a record accepted by Put: its result arrives
// later, exactly once.
type Pending struct {
	state atomic.Uint32 // pendingOpen, pendingWaited or pendingDone

	// The result, written before state becomes pendingDone, compact: a
	// million handles are a million objects for the garbage collector.
	attempts int32
	sub      int64
	put      *putRecord // nil unless put
	err      error

	// The done channel is made on first use: most callers of a fast
	// producer never wait on single records, and their results are
	// published with one compare-and-swap.
	mu   sync.Mutex // guards: done
	done chan struct{}
}

// States of a Pending.
const (
	pendingOpen   = iota // no result, no channel
	pendingWaited        // no result; done is made and publish must close it
	pendingDone          // the result is in
)

// closedChan is the Done channel of every handle whose result was in
// before anyone asked for one.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done is closed when the result is in.
func (p *Pending) Done() <-chan struct{} {
	if p.state.Load() == pendingDone {
		return closedChan
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = make(chan struct{})
	}
	if p.state.CompareAndSwap(pendingOpen, pendingWaited) || p.state.Load() == pendingWaited {
		return p.done // publish closes it
	}
	return closedChan // published meanwhile, without looking at done
}

// Result returns the result once it is in; before, ok is false.
func (p *Pending) Result() (r Result, ok bool) {
	if p.state.Load() != pendingDone {
		return Result{}, false
	}
	r = Result{SubSequenceNumber: p.sub, Attempts: int(p.attempts), Err: p.err}
	if p.put != nil {
		r.ShardID, r.SequenceNumber, r.Aggregated = p.put.shardID, p.put.seq, p.put.aggregated
	}
	return r, true
}

// putRecord is the Kinesis record that carries a handle's user record,
// shared by the handles of all its user records.
type putRecord struct {
	shardID, seq string
	aggregated   bool
}

// Wait waits for the result. err is the record's error (Result.Err), or the
// context's when ctx ends first.
func (p *Pending) Wait(ctx context.Context) (Result, error) {
	if r, ok := p.Result(); ok {
		return r, r.Err
	}
	select {
	case <-p.Done():
		r, _ := p.Result()
		return r, r.Err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// publish makes the result visible and wakes waiters. It is called once
// per handle. put, when not nil, holds res's ShardID, SequenceNumber and
// Aggregated.
func (p *Pending) publish(res Result, put *putRecord) {
	if put == nil && res.ShardID != "" {
		put = &putRecord{shardID: res.ShardID, seq: res.SequenceNumber, aggregated: res.Aggregated}
	}
	p.attempts, p.sub, p.put, p.err = int32(res.Attempts), res.SubSequenceNumber, put, res.Err
	if p.state.CompareAndSwap(pendingOpen, pendingDone) {
		return // nobody waits
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state.Store(pendingDone)
	close(p.done)
}

// pendingSlab is how many handles Put allocates at once: one allocation
// per slab instead of one per record. A handle the caller keeps holds its
// slab (a few KiB) in memory.
const pendingSlab = 128

// entry is a user record in the producer's care, held by value in its
// shard's container (a slab of entries per Kinesis record), so a record
// costs no allocation of its own. Each entry sits in exactly one place
// (a shard's open container or queue, a request in flight, the unrouted
// list) until completeLocked ends it.
type entry struct {
	rec     Record
	hash    kds.HashKey
	size    int64 // charged to the buffer budget
	putAt   stamp // with aggregation, its container's: at most MaxBufferedTime early
	sentAt  stamp // first attempt
	tries   int
	lastErr error

	// Whoever receives the result: a handle (Put) or a callback
	// (PutCallback), or neither (a nil callback).
	pd *Pending
	fn func(Result)
}

// bookkeeping approximates the memory a buffered record holds besides its
// data and keys (its entry, handle and completion, queue slots), for the
// budget.
const bookkeeping = 400

// validate checks a record as Kinesis would, and returns its hash key. The
// errors are *kds.Error with the code Kinesis answers such a record
// with, naming the field and its value.
func validate(r *Record, maxRecordSize int) (kds.HashKey, error) {
	pk := r.PartitionKey
	if len(pk) == 0 || (len(pk) > kds.MaxPartitionKeyLength && utf8.RuneCountInString(pk) > kds.MaxPartitionKeyLength) {
		return kds.HashKey{}, kds.Errorf(kds.ErrCodeValidation,
			"1 validation error detected: Value '%s' at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and %d (it has %d characters)",
			shorten(pk), kds.MaxPartitionKeyLength, utf8.RuneCountInString(pk))
	}
	if !utf8.ValidString(pk) {
		return kds.HashKey{}, kds.Errorf(kds.ErrCodeValidation,
			"1 validation error detected: Value %q at 'partitionKey' failed to satisfy constraint: Member must be valid Unicode", shorten(pk))
	}
	if size := len(r.Data) + len(pk); size > maxRecordSize {
		return kds.HashKey{}, kds.Errorf(kds.ErrCodeInvalidArgument,
			"Record size (data + partition key) of %d bytes for partition key '%s' exceeds the MaxRecordSize of %d bytes", size, shorten(pk), maxRecordSize)
	}
	if r.ExplicitHashKey != "" {
		h, err := kds.ParseHashKey(r.ExplicitHashKey)
		if err != nil {
			return kds.HashKey{}, kds.Errorf(kds.ErrCodeInvalidArgument,
				"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", shorten(r.ExplicitHashKey))
		}
		return h, nil
	}
	return kds.HashPartitionKey(pk), nil
}

// shorten keeps error messages readable for huge values.
func shorten(s string) string {
	if len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:64], len(s))
}

// stamp is a time as nanoseconds since Producer.epoch plus one (0: not
// set): a record carries two, and a time.Time is three words with a
// pointer the garbage collector must trace.
type stamp int64

// stampOf is t as a stamp.
func (p *Producer) stampOf(t time.Time) stamp { return stamp(t.Sub(p.epoch)) + 1 }

// timeOf is the time of a set stamp.
func (p *Producer) timeOf(s stamp) time.Time { return p.epoch.Add(time.Duration(s - 1)) }
