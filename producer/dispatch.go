package producer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/sdkhttp"
)

// scanEvery is how often queued records are checked against their TTL and
// buffer fill is reported.
const scanEvery = 100 * time.Millisecond

// Causes of records that expire before any attempt.
var (
	errNoShardMap = errors.New("no shard map: ListShards has not answered")
	errNotSent    = errors.New("not sent: waiting for the shard's rate limit or a retry backoff")
)

// dispatch is the one goroutine that seals containers, expires records and
// starts requests.
func (p *Producer) dispatch() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		next, fill := p.pumpLocked()
		list := p.takeCompletedLocked()
		p.mu.Unlock()
		p.deliver(list)
		if fill != nil {
			for _, h := range p.hooks.fill {
				h.OnBufferFill(p.stream, fill.records, fill.bytes)
			}
		}
		timer.Reset(max(next, time.Millisecond))
		select {
		case <-p.wake:
		case <-timer.C:
		case <-p.stop:
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

type fillReport struct {
	records int
	bytes   int64
}

// pumpLocked does what is due now and returns how long to sleep.
func (p *Producer) pumpLocked() (time.Duration, *fillReport) {
	now := p.cfg.now()
	next := now.Add(time.Hour)
	soon := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	if p.aborted != nil {
		return time.Hour, nil
	}
	flush := p.flushing > 0 || p.closed
	for _, s := range p.shards {
		if len(s.open) == 0 {
			continue
		}
		due := p.timeOf(s.openStamp).Add(p.cfg.linger)
		if flush || !due.After(now) {
			p.sealLocked(s)
		} else {
			soon(due)
		}
	}
	var fill *fillReport
	if now.Sub(p.lastScan) >= scanEvery {
		p.lastScan = now
		p.expireLocked(now)
		if len(p.hooks.fill) > 0 && (p.bufRecords > 0 || !p.reportedEmpty) {
			fill = &fillReport{p.bufRecords, p.bufBytes}
			p.reportedEmpty = p.bufRecords == 0
		}
	}
	if p.bufRecords > 0 {
		soon(p.lastScan.Add(scanEvery))
	}
	if !p.mapStale {
		for p.inflight < p.cfg.maxRequests {
			req, wait := p.collectLocked(now, flush)
			if !wait.IsZero() {
				soon(wait)
			}
			if req == nil {
				break
			}
			p.inflight++
			p.wg.Add(1)
			go p.send(req)
		}
	}
	return next.Sub(now), fill
}

// expireLocked fails the records whose TTL has passed before they were put.
func (p *Producer) expireLocked(now time.Time) {
	if len(p.unrouted) > 0 {
		keep := p.unrouted[:0]
		for i := range p.unrouted {
			e := &p.unrouted[i]
			if now.Sub(p.timeOf(e.putAt)) >= p.cfg.ttl {
				p.expireEntryLocked(e, errNoShardMap)
			} else {
				keep = append(keep, *e)
			}
		}
		clear(p.unrouted[len(keep):])
		p.unrouted = keep
	}
	for _, s := range p.shards {
		if len(s.queue) == 0 {
			continue
		}
		keep := s.queue[:0]
		for _, c := range s.queue {
			if now.Before(c.expires) {
				keep = append(keep, c)
				continue
			}
			for i := range c.recs {
				p.expireEntryLocked(&c.recs[i], errNotSent)
			}
			p.queued--
		}
		clear(s.queue[len(keep):])
		s.queue = keep
	}
}

// expireEntryLocked fails a record whose TTL has passed, with its last error,
// else with cause.
func (p *Producer) expireEntryLocked(e *entry, cause error) {
	if e.lastErr != nil {
		cause = e.lastErr
	}
	p.completeLocked(e, Result{Attempts: e.tries, Err: fmt.Errorf("%w after %s: %w", ErrRecordExpired, p.cfg.ttl, cause)})
}

// request is one PutRecords call in the making.
type request struct {
	cs []*container
}

// Rates of a shard's buckets, per second.
func (p *Producer) recRate(s *shard) float64 {
	return float64(p.cfg.ratePercent) / 100 * kds.ShardWriteRecordsPerSecond * s.factor
}

func (p *Producer) byteRate(s *shard) float64 {
	return float64(p.cfg.ratePercent) / 100 * kds.ShardWriteBytesPerSecond * s.factor
}

func (p *Producer) refill(s *shard, now time.Time) {
	if d := now.Sub(s.last).Seconds(); d > 0 {
		s.recTok = min(p.recRate(s), s.recTok+d*p.recRate(s))
		s.byteTok = min(p.byteRate(s), s.byteTok+d*p.byteRate(s))
		s.last = now
	}
}

// tokensWait is zero when the shard's buckets allow size more bytes in one
// more record (beyond what the request being collected took), else how long
// until they do. A bucket holding a full second's worth lets any record
// through, and goes into debt.
func (p *Producer) tokensWait(s *shard, size int) time.Duration {
	if p.cfg.ratePercent == 0 {
		return 0
	}
	rr, br := p.recRate(s), p.byteRate(s)
	needRec := min(1, rr) + s.tRec
	needByte := min(float64(size), br) + s.tByte
	var wait float64
	if s.recTok < needRec {
		wait = (needRec - s.recTok) / rr
	}
	if s.byteTok < needByte {
		wait = max(wait, (needByte-s.byteTok)/br)
	}
	if wait == 0 {
		return 0
	}
	return time.Duration(wait*float64(time.Second)) + time.Millisecond
}

// collectLocked picks the containers of the next request, round robin over
// the shards, each shard's in queue order. It returns nil when nothing
// should be sent now, with the time something may be.
func (p *Producer) collectLocked(now time.Time, flush bool) (*request, time.Time) {
	n := len(p.shards)
	if n == 0 || p.queued == 0 {
		return nil, time.Time{}
	}
	var (
		wait          time.Time
		count, size   int
		full, urgent  bool
		earliestDue   time.Time
		take          = make([]int, n) // containers taken per shard, by index from p.rr
		limitRequests = p.cfg.collectCount
		limitBytes    = p.cfg.collectSize
	)
	later := func(t time.Time) {
		if wait.IsZero() || t.Before(wait) {
			wait = t
		}
	}
	for k := 0; k < n && !full; k++ {
		s := p.shards[(p.rr+k)%n]
		s.tRec, s.tByte = 0, 0
		if len(s.queue) == 0 || (p.cfg.strict && s.inflight > 0) {
			continue
		}
		if p.cfg.ratePercent > 0 {
			p.refill(s, now)
		}
		for _, c := range s.queue {
			if c.notBefore.After(now) {
				later(c.notBefore)
				break
			}
			if p.cfg.strict && take[k] > 0 {
				break
			}
			if count+1 > limitRequests || size+c.putSize > limitBytes {
				full = true
				break
			}
			if d := p.tokensWait(s, c.putSize); d > 0 {
				later(now.Add(d))
				break
			}
			take[k]++
			count++
			size += c.putSize
			s.tRec++
			s.tByte += float64(c.putSize)
			if c.tries > 0 || !c.due.After(now) {
				urgent = true
			} else if earliestDue.IsZero() || c.due.Before(earliestDue) {
				earliestDue = c.due
			}
		}
	}
	if count == 0 {
		return nil, wait
	}
	if !full && !urgent && !flush {
		// Wait for more records, up to the oldest one's MaxBufferedTime.
		later(earliestDue)
		return nil, wait
	}
	req := &request{cs: make([]*container, 0, count)}
	for k := 0; k < n; k++ {
		if take[k] == 0 {
			continue
		}
		s := p.shards[(p.rr+k)%n]
		req.cs = append(req.cs, s.queue[:take[k]]...)
		clear(s.queue[:take[k]])
		s.queue = s.queue[take[k]:]
		p.queued -= take[k]
		s.inflight += take[k]
		if p.cfg.ratePercent > 0 {
			s.recTok -= s.tRec
			s.byteTok -= s.tByte
		}
		s.tRec, s.tByte = 0, 0
	}
	p.rr = (p.rr + 1) % n
	sent := p.stampOf(now)
	for _, c := range req.cs {
		c.tries++
		for i := range c.recs {
			e := &c.recs[i]
			e.tries++
			if e.sentAt == 0 {
				e.sentAt = sent
			}
		}
	}
	return req, time.Time{}
}

// build encodes a container for sending, once.
func (p *Producer) build(c *container) {
	if c.built {
		return
	}
	c.built = true
	first := &c.recs[0]
	if !p.cfg.aggregation {
		c.pk, c.ehk, c.data = first.rec.PartitionKey, first.rec.ExplicitHashKey, first.rec.Data
		c.putSize = len(c.data) + len(c.pk)
		return
	}
	a := p.aggregator()
	defer p.aggs.Put(a)
	for i := range c.recs {
		r := &c.recs[i].rec
		if err := a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data); err != nil {
			// The size bound said it fits: keep the rest for another container.
			c.leftover = slices.Clone(c.recs[i:])
			clear(c.recs[i:])
			c.recs = c.recs[:i]
			break
		}
	}
	c.pk = a.PartitionKey()
	// Raw unless the data grew: aggregated, or alone but starting with the magic.
	c.aggregated = a.Len() > 1 || a.Size() != len(first.rec.Data)
	c.ehk = first.rec.ExplicitHashKey
	if c.aggregated {
		// The first record's hash key, known already: the Aggregator would
		// hash its partition key again.
		c.ehk = hashKeyDecimal(first.hash)
	}
	var buf []byte
	if b, ok := p.bufs.Get().(*[]byte); ok {
		buf = (*b)[:0]
	}
	c.data = a.AppendEncoded(slices.Grow(buf, a.Size()))
	c.pooled = true
	c.putSize = len(c.data) + len(c.pk)
	a.Reset()
}

// pooledAggregator is an Aggregator kept for the next container: its
// tables, record buffer and key indexes stay allocated, so packing a
// container does not grow them from empty each time.
type pooledAggregator struct {
	*aggregation.Aggregator
	maxRecordSize int
}

// aggregator returns an empty Aggregator for the stream's current
// MaxRecordSize, from p.aggs when one fits.
func (p *Producer) aggregator() *pooledAggregator {
	maxRecordSize := int(p.maxRecordSize.Load())
	if a, ok := p.aggs.Get().(*pooledAggregator); ok && a.maxRecordSize == maxRecordSize {
		return a
	}
	a, err := aggregation.NewAggregator(aggregation.MaxSize(p.cfg.aggMaxSize), aggregation.MaxRecordSize(maxRecordSize))
	if err != nil { // options were validated; cannot happen
		panic(err)
	}
	return &pooledAggregator{Aggregator: a, maxRecordSize: maxRecordSize}
}

// send runs one PutRecords request and settles its containers.
func (p *Producer) send(req *request) {
	defer p.wg.Done()
	call, ok := p.admit(req)
	if !ok {
		return
	}
	for _, c := range req.cs {
		p.build(c)
	}
	in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: make([]types.PutRecordsRequestEntry, 0, len(req.cs))}
	sent := req.cs[:0:0]
	userRecs, bytes := 0, 0
	for _, c := range req.cs {
		if len(c.recs) == 0 {
			continue
		}
		e := types.PutRecordsRequestEntry{Data: c.data, PartitionKey: aws.String(c.pk)}
		if c.ehk != "" {
			e.ExplicitHashKey = aws.String(c.ehk)
		}
		in.Records = append(in.Records, e)
		sent = append(sent, c)
		userRecs += len(c.recs)
		bytes += c.putSize
	}
	var (
		out   *kinesis.PutRecordsOutput
		err   error
		start = p.cfg.now()
	)
	if len(in.Records) > 0 {
		ctx, cancel := context.WithTimeout(p.runCtx, p.cfg.requestTimeout)
		out, err = p.client.PutRecords(ctx, in, noSDKRetries, sdkhttp.FixKinesis, sdkhttp.FastCodecs)
		cancel()
		if err == nil && len(out.Records) != len(in.Records) {
			err = fmt.Errorf("PutRecords answered %d entries for %d records", len(out.Records), len(in.Records))
		}
	}
	now := p.cfg.now()
	p.stats.requests.Add(1)
	p.stats.requestBytes.Add(int64(bytes))
	done := PutRecordsDone{Stream: p.stream, KinesisRecords: len(in.Records), UserRecords: userRecs, Bytes: bytes, Duration: now.Sub(start), Err: err}
	var errs []entryErr

	p.mu.Lock()
	aborted := p.aborted != nil
	for _, c := range req.cs {
		c.shard.inflight--
	}
	var retry []*container
	var leftovers map[*container]*container // a split container's rest, sent after it
	for _, c := range req.cs {
		if len(c.leftover) > 0 {
			if leftovers == nil {
				leftovers = make(map[*container]*container)
			}
			leftovers[c] = &container{shard: c.shard, recs: c.leftover, putSize: c.putSize, due: c.due, expires: c.expires}
			c.leftover = nil
		}
	}
	switch {
	case err != nil && p.aborted != nil:
		for _, c := range sent {
			p.noteErrLocked(c, err) // a cancellation keeps the earlier cause
			p.failLocked(c.recs, p.aborted)
		}
	case err != nil:
		p.stats.requestErrors.Add(1)
		code := kds.Code(err)
		errs = append(errs, entryErr{code: code})
		if code != "" && !kds.IsRetryable(err) {
			// Kinesis refused the request for good (no such stream, access
			// denied, ...): retrying cannot help.
			p.log.Error("PutRecords failed", "err", err)
			for _, c := range sent {
				for i := range c.recs {
					p.completeLocked(&c.recs[i], Result{Attempts: c.recs[i].tries, Err: err})
				}
			}
			break
		}
		p.log.Debug("PutRecords failed; retrying", "err", err)
		for _, c := range sent {
			if kds.IsThrottle(err) {
				p.cutRateLocked(c.shard, now)
			}
			p.noteErrLocked(c, err)
			retry = append(retry, c)
		}
	default:
		for i, e := range out.Records {
			c := sent[i]
			if e.ErrorCode != nil {
				cause := kds.Errorf(*e.ErrorCode, "%s", aws.ToString(e.ErrorMessage))
				done.Failed++
				p.stats.entryErrors.Add(1)
				if kds.IsThrottle(cause) {
					done.Throttled++
					p.stats.throttles.Add(1)
					if p.cutRateLocked(c.shard, now) {
						errs = append(errs, entryErr{shardID: c.shard.id, code: cause.Code, throttle: true})
					}
				}
				errs = append(errs, entryErr{shardID: c.shard.id, code: cause.Code})
				p.noteErrLocked(c, cause)
				retry = append(retry, c)
				continue
			}
			done.PutKinesisRecords++
			done.PutUserRecords += len(c.recs)
			done.PutBytes += c.putSize
			p.stats.kinesisPut.Add(1)
			p.settleLocked(c, aws.ToString(e.ShardId), aws.ToString(e.SequenceNumber), now)
		}
	}
	// Back in front of their shards' queues, in their order: each split
	// container's rest right after it (or alone, when it went through).
	if len(leftovers) > 0 {
		retried := make(map[*container]bool, len(retry))
		for _, c := range retry {
			retried[c] = true
		}
		retry = retry[:0]
		for _, c := range req.cs {
			if retried[c] {
				retry = append(retry, c)
			}
			if l := leftovers[c]; l != nil {
				retry = append(retry, l)
			}
		}
	}
	for i := len(retry) - 1; i >= 0; i-- {
		p.retryLocked(retry[i], now)
	}
	list := p.takeCompletedLocked()
	p.mu.Unlock()
	outcome(call, out, err, aborted || len(in.Records) == 0)
	p.deliver(list)
	// The request's slot is given back only once its results are delivered:
	// callbacks and hooks that are slower than Kinesis then hold back
	// sending, so the buffer fills and Put blocks, instead of each finished
	// request leaving a goroutine (and its containers) waiting on them
	// while new requests start.
	p.mu.Lock()
	p.inflight--
	p.mu.Unlock()
	p.nudge()

	for _, h := range p.hooks.put {
		h.OnPutRecords(done)
	}
	for _, e := range errs {
		if e.throttle {
			for _, h := range p.hooks.throttle {
				h.OnThrottle(p.stream, e.shardID)
			}
			continue
		}
		for _, h := range p.hooks.errs {
			h.OnError(p.stream, e.shardID, e.code)
		}
	}
}

type entryErr struct {
	shardID, code string
	throttle      bool
}

// noteErrLocked remembers err as the records' last cause. A cancellation
// (Close giving up, a request timeout) does not replace an earlier cause from
// Kinesis: that is what the caller needs to see.
func (p *Producer) noteErrLocked(c *container, err error) {
	canceled := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	for i := range c.recs {
		if e := &c.recs[i]; !canceled || e.lastErr == nil {
			e.lastErr = err
		}
	}
}

// settleLocked ends the records of a container Kinesis accepted.
func (p *Producer) settleLocked(c *container, shardID, seq string, now time.Time) {
	s := c.shard
	if p.cfg.ratePercent > 0 && s.factor < 1 { // additive increase
		p.refill(s, now)
		s.factor = min(1, s.factor+0.05)
	}
	if shardID != s.id {
		// The map is out of date (resharding): find out what changed.
		p.staleLocked()
		if c.aggregated && len(c.recs) > 1 {
			u := misrouted{c: c, shardID: shardID, seq: seq}
			if rng, ok := p.ranges[shardID]; ok {
				p.resolveMisroutedLocked(u, rng)
			} else {
				p.unverified = append(p.unverified, u)
			}
			return
		}
	}
	p.settleAllLocked(c, shardID, seq)
}

// cutRateLocked halves a throttled shard's rate (multiplicative decrease),
// at most once per 100 ms, so one burst of throttles counts once. It
// reports whether it cut.
func (p *Producer) cutRateLocked(s *shard, now time.Time) bool {
	if now.Sub(s.lastCut) < scanEvery {
		return false
	}
	s.lastCut = now
	if p.cfg.ratePercent > 0 {
		p.refill(s, now)
		s.factor = max(0.05, s.factor/2)
		s.recTok = min(s.recTok, 0)
		s.byteTok = min(s.byteTok, 0)
	}
	p.log.Debug("shard throttled; lowering its rate", "shard_id", s.id, "factor", s.factor)
	return true
}

// retryLocked puts a failed container back at the front of its shard's
// queue after a backoff, or expires its records, or, when its shard has
// closed, routes them anew.
func (p *Producer) retryLocked(c *container, now time.Time) {
	if p.requeueLocked(c, now, backoff.Delay(p.cfg.backoffMin, p.cfg.backoffMax, c.tries-1)) {
		p.stats.retries.Add(int64(len(c.recs)))
	}
}

// requeueLocked puts a container back at the front of its shard's queue,
// not to be sent before wait has passed; or fails its records when Close
// gave up or their TTL has passed; or, when its shard has closed, routes
// them anew. It reports whether the records stay on their way.
func (p *Producer) requeueLocked(c *container, now time.Time, wait time.Duration) bool {
	switch {
	case p.aborted != nil:
		p.failLocked(c.recs, p.aborted)
		return false
	case !now.Before(c.expires):
		for i := range c.recs {
			p.expireEntryLocked(&c.recs[i], errNotSent)
		}
		return false
	case c.shard.retired || p.byID[c.shard.id] != c.shard:
		for _, e := range c.recs {
			p.routeLocked(e)
		}
		return true
	}
	c.notBefore = now.Add(wait)
	s := c.shard
	s.queue = slices.Insert(s.queue, 0, c)
	p.queued++
	return true
}
