package producer

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/breaker"
	"github.com/ksp-project/ksp/kds"
)

// ErrUnavailable: Put refused a record because the breaker (WithBreaker)
// is open: Kinesis failed every recent call. The error also matches
// breaker.ErrOpen and says when probes resume.
var ErrUnavailable = errors.New("producer: Kinesis unavailable")

// WithBreaker guards Kinesis with b. Every PutRecords request is a call
// through b: a request that fails as a whole, or whose every entry failed
// with an error other than throttling, is a failure; any other answer a
// success (throttling is Kinesis working, and is paced by RateLimit). While
// b is open, Put fails at once with ErrUnavailable instead of filling the
// buffer budget, and buffered records wait (their RecordTTL still runs);
// when b lets probes through, requests of buffered records (or of records
// put then) are the probes, and a success closes it. To open when "every
// call failed for a window", build b with breaker.FailureRate(1, n) and
// breaker.Window. Default none: Put only blocks or fails on the budget.
func WithBreaker(b *breaker.Breaker) Option {
	return optionFunc(func(c *config) { c.breaker = b })
}

// refusal is the error Put returns while the breaker is open, or nil.
func (p *Producer) refusal() error {
	if p.cfg.breaker == nil {
		return nil
	}
	var oe *breaker.OpenError
	if err := p.cfg.breaker.Ready(); errors.As(err, &oe) && oe.State == breaker.Open {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil // closed or half-open: records are needed for probes
}

// admit asks the breaker for a request. When it refuses, the request's
// containers go back to the front of their queues, untried, until the
// breaker may let probes through.
func (p *Producer) admit(req *request) (*breaker.Call, bool) {
	if p.cfg.breaker == nil {
		return nil, true
	}
	c, err := p.cfg.breaker.Allow()
	if err == nil {
		return c, true
	}
	wait := 10 * time.Millisecond // half-open, every probe slot taken
	var oe *breaker.OpenError
	if errors.As(err, &oe) && oe.RetryAfter > wait {
		wait = oe.RetryAfter
	}
	p.mu.Lock()
	now := p.cfg.now()
	p.inflight--
	for i := len(req.cs) - 1; i >= 0; i-- {
		c := req.cs[i]
		c.shard.inflight--
		c.tries--
		if p.cfg.ratePercent > 0 { // give back the tokens collecting it took
			c.shard.recTok = min(p.recRate(c.shard), c.shard.recTok+1)
			c.shard.byteTok = min(p.byteRate(c.shard), c.shard.byteTok+float64(c.putSize))
		}
		for j := range c.recs {
			e := &c.recs[j]
			if e.tries--; e.tries == 0 {
				e.sentAt = 0 // never sent: BufferingTime keeps running
			}
		}
		p.requeueLocked(c, now, wait)
	}
	list := p.takeCompletedLocked()
	p.mu.Unlock()
	p.deliver(list)
	p.nudge()
	return nil, false
}

// outcome tells the breaker how a request went.
func outcome(c *breaker.Call, out *kinesis.PutRecordsOutput, err error, aborted bool) {
	switch {
	case c == nil:
	case aborted:
		c.Cancel()
	case err != nil:
		if kds.IsThrottle(err) {
			err = nil
		}
		c.Done(err)
	default:
		var failure error
		for _, e := range out.Records {
			if e.ErrorCode == nil {
				c.Done(nil)
				return
			}
			if cause := kds.Errorf(*e.ErrorCode, "%s", aws.ToString(e.ErrorMessage)); !kds.IsThrottle(cause) {
				failure = cause
			}
		}
		c.Done(failure) // every entry failed: a failure unless all were throttled
	}
}
