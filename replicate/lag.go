package replicate

import (
	"math"
	"sync"
	"time"
)

// lagBuckets per doubling: quantiles are within about 9% of the true value.
const (
	lagPerOctave = 8
	lagMin       = 100 * time.Microsecond
	lagBuckets   = 36 * lagPerOctave // up to 100µs·2^36, about 76 days
)

// LagStats is a HookReplicationLag that keeps a histogram of replication
// lags in fixed memory, for percentiles (ksp replicate's status lines,
// ksp bench replicate). It is safe for concurrent use.
type LagStats struct {
	mu     sync.Mutex // guards: counts, n, max
	counts [lagBuckets + 1]int64
	n      int64
	max    time.Duration
}

var _ HookReplicationLag = (*LagStats)(nil)

// OnReplicationLag records one record's lag.
func (s *LagStats) OnReplicationLag(_ string, lag time.Duration) {
	b := 0
	if lag > lagMin {
		b = min(lagBuckets, int(math.Ceil(math.Log2(float64(lag)/float64(lagMin))*lagPerOctave)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[b]++
	s.n++
	s.max = max(s.max, lag)
}

// Count is how many records were acknowledged.
func (s *LagStats) Count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Quantile returns the lag that a fraction q (0…1) of the records stayed
// within (the upper bound of its histogram bucket, at most the largest lag
// seen), 0 before any record.
func (s *LagStats) Quantile(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(s.n)))
	var seen int64
	for b, c := range s.counts {
		if seen += c; seen >= rank && c > 0 {
			upper := time.Duration(float64(lagMin) * math.Exp2(float64(b)/lagPerOctave))
			return min(upper, s.max)
		}
	}
	return s.max
}
