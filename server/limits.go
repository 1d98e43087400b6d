package server

import (
	"sync"
	"time"
)

// bucket is a token bucket refilled continuously at rate per second, holding
// at most burst tokens. Tokens may go negative (debt): a large read is
// allowed once and then blocks later calls until the debt is repaid, as
// Kinesis does with GetRecords bytes.
type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newBucket(rate, burst float64, now time.Time) bucket {
	return bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(b.burst, b.tokens+d*b.rate)
		b.last = now
	}
}

// shardLimiter enforces one shard's write and read limits.
type shardLimiter struct {
	mu         sync.Mutex // guards: all buckets
	writeRecs  bucket
	writeBytes bucket
	readCalls  bucket
	readBytes  bucket
}

func newShardLimiter(now time.Time) *shardLimiter {
	return &shardLimiter{
		writeRecs:  newBucket(1000, 1000, now),
		writeBytes: newBucket(1<<20, 1<<20, now),
		readCalls:  newBucket(5, 5, now),
		readBytes:  newBucket(2<<20, 2<<20, now),
	}
}

// takeWrite reserves one record of size bytes; false means throttled.
//
// A record larger than the bucket (up to 10 MiB after UpdateMaxRecordSize)
// is admitted when the bucket is full, and leaves it in debt: as AWS puts
// it, the shard bursts up to 10 MiB while averaging 1 MiB/s, so further
// writes wait until the debt is repaid at the shard's rate.
func (l *shardLimiter) takeWrite(size int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeRecs.refill(now)
	l.writeBytes.refill(now)
	if l.writeRecs.tokens < 1 || l.writeBytes.tokens < min(float64(size), l.writeBytes.burst) {
		return false
	}
	l.writeRecs.tokens--
	l.writeBytes.tokens -= float64(size)
	return true
}

// giveWrite returns what takeWrite took for a record that was not written
// after all (its request failed as a whole).
func (l *shardLimiter) giveWrite(size int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeRecs.tokens = min(l.writeRecs.burst, l.writeRecs.tokens+1)
	l.writeBytes.tokens = min(l.writeBytes.burst, l.writeBytes.tokens+float64(size))
}

// takeReadCall admits one GetRecords call; false means throttled (too many
// calls, or byte debt from earlier large reads).
func (l *shardLimiter) takeReadCall(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readCalls.refill(now)
	l.readBytes.refill(now)
	if l.readCalls.tokens < 1 || l.readBytes.tokens <= 0 {
		return false
	}
	l.readCalls.tokens--
	return true
}

// chargeRead debits bytes read by an admitted call.
func (l *shardLimiter) chargeRead(bytes int) {
	l.mu.Lock()
	l.readBytes.tokens -= float64(bytes)
	l.mu.Unlock()
}
