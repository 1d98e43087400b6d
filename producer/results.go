package producer

import "time"

// Results are decided under Producer.mu and delivered (hooks, handles,
// callbacks) after it is released, by whichever goroutine decided them.

// completion is the result of one record, decided apart from its container
// (failed, expired, misrouted).
type completion struct {
	pd            *Pending
	fn            func(Result)
	res           Result
	putAt, sentAt stamp
}

// settled is a container Kinesis accepted: its records' results are
// delivered straight from its slab, with no completion each.
type settled struct {
	c       *container
	shardID string
	seq     string
}

// results is what one goroutine took to deliver.
type results struct {
	list    []completion
	settled []settled
}

// completeLocked ends a record with res. The caller drops the entry from
// wherever it was: each entry is completed once.
func (p *Producer) completeLocked(e *entry, res Result) {
	p.freeBudgetLocked(1, e.size)
	p.undelivered++
	p.completed = append(p.completed, completion{pd: e.pd, fn: e.fn, res: res, putAt: e.putAt, sentAt: e.sentAt})
}

// settleAllLocked ends every record of a container Kinesis accepted under
// shardID and seq.
func (p *Producer) settleAllLocked(c *container, shardID, seq string) {
	var bytes int64
	for i := range c.recs {
		bytes += c.recs[i].size
	}
	p.freeBudgetLocked(len(c.recs), bytes)
	p.undelivered += len(c.recs)
	p.settled = append(p.settled, settled{c: c, shardID: shardID, seq: seq})
}

// failLocked ends records with cause (Close gave up), wrapping each one's
// last error.
func (p *Producer) failLocked(es []entry, cause error) {
	for i := range es {
		e := &es[i]
		p.completeLocked(e, Result{Attempts: e.tries, Err: wrapLast(cause, e.lastErr)})
	}
}

// freeBudgetLocked gives back what ended records held of the buffer budget,
// waking blocked Puts.
func (p *Producer) freeBudgetLocked(records int, bytes int64) {
	p.bufRecords -= records
	p.bufBytes -= bytes
	p.freeSpaceLocked()
}

// idleLocked reports whether every record Put accepted has its result
// delivered.
func (p *Producer) idleLocked() bool { return p.bufRecords == 0 && p.undelivered == 0 }

// wakeIdleLocked wakes Flush when the producer is idle.
func (p *Producer) wakeIdleLocked() {
	if p.idleLocked() && p.idleWaiters > 0 {
		close(p.idle)
		p.idle = make(chan struct{})
		p.idleWaiters = 0
	}
}

func (p *Producer) takeCompletedLocked() results {
	r := results{list: p.completed, settled: p.settled}
	p.completed, p.settled = nil, nil
	return r
}

// deliver publishes results: counts them, then calls the hooks and hands
// each to its handle or callback; settled containers' buffers then go back
// to their pools.
func (p *Producer) deliver(r results) {
	if len(r.list) == 0 && len(r.settled) == 0 {
		return
	}
	var now time.Time
	if len(p.hooks.done) > 0 {
		now = p.cfg.now()
	}
	var ok, failed int64
	for i := range r.list {
		if r.list[i].res.Err == nil {
			ok++
		} else {
			failed++
		}
	}
	for _, s := range r.settled {
		ok += int64(len(s.c.recs))
	}
	// Counted first, so whoever sees a result sees it in Stats.
	p.stats.put.Add(ok)
	p.stats.failed.Add(failed)
	defer func() { // then Flush may return
		p.mu.Lock()
		defer p.mu.Unlock()
		p.undelivered -= int(ok + failed)
		p.wakeIdleLocked()
	}()
	for i := range r.list {
		c := &r.list[i]
		p.hand(c.pd, c.fn, c.res, nil, c.putAt, c.sentAt, now)
	}
	for _, s := range r.settled {
		c := s.c
		var put *putRecord // shared by the container's handles
		for j := range c.recs {
			e := &c.recs[j]
			res := Result{ShardID: s.shardID, SequenceNumber: s.seq, Aggregated: c.aggregated, Attempts: e.tries}
			if c.aggregated {
				res.SubSequenceNumber = int64(j)
			}
			if e.pd != nil && put == nil {
				put = &putRecord{shardID: s.shardID, seq: s.seq, aggregated: c.aggregated}
			}
			p.hand(e.pd, e.fn, res, put, e.putAt, e.sentAt, now)
		}
		p.release(c)
	}
}

// hand gives one record's result to the hooks, then to its handle or
// callback.
func (p *Producer) hand(pd *Pending, fn func(Result), res Result, put *putRecord, putAt, sentAt stamp, now time.Time) {
	if len(p.hooks.done) > 0 {
		d := UserRecordDone{Stream: p.stream, Result: res, Latency: now.Sub(p.timeOf(putAt))}
		if sentAt != 0 {
			d.Buffered = time.Duration(sentAt - putAt)
		}
		for _, h := range p.hooks.done {
			h.OnUserRecordDone(d)
		}
	}
	switch {
	case pd != nil:
		pd.publish(res, put)
	case fn != nil:
		fn(res)
	}
}

// slab returns an empty slab for a container of about n records, one a
// settled container left when it fits.
func (p *Producer) slab(n int) []entry {
	n = max(n, 16)
	if sl, ok := p.slabs.Get().(*[]entry); ok && cap(*sl) >= n {
		return (*sl)[:0]
	}
	return make([]entry, 0, n)
}

// release returns a delivered container's data buffer and slab to their
// pools, the slab cleared so it holds on to no caller's data. The request
// that carried the container has returned, so nothing reads them.
func (p *Producer) release(c *container) {
	if c.pooled {
		b := c.data[:0]
		p.bufs.Put(&b)
	}
	if cap(c.recs) >= 16 { // a slab of an aggregated container
		sl := c.recs[:cap(c.recs)]
		clear(sl)
		sl = sl[:0]
		p.slabs.Put(&sl)
	}
	c.data, c.recs, c.pooled = nil, nil, false
}
