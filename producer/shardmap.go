package producer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/sdkhttp"
)

// shard is an open shard as the producer sees it: the records predicted
// for it, and its rate limiter. Guarded by Producer.mu.
type shard struct {
	id      string
	rng     kds.HashKeyRange
	retired bool // closed by resharding; its records were routed anew

	open      []entry // the container being filled
	openSize  int     // upper bound of its PutSize when aggregated
	openStamp stamp   // Put time of its oldest record
	lastCount int     // records of its last sealed container: the next slab's size

	queue    []*container // sealed, in order, not in flight
	inflight int          // containers in flight

	// Token buckets for records and bytes; factor scales both (AIMD).
	recTok, byteTok float64
	last            time.Time
	factor          float64
	lastCut         time.Time
	tRec, tByte     float64 // taken by the request being collected
}

// container is one Kinesis record to be: one user record, or several
// aggregated, all predicted for one shard.
type container struct {
	shard     *shard
	recs      []entry // a slab of its own
	putSize   int     // upper bound until built, exact after
	due       time.Time
	expires   time.Time
	notBefore time.Time // backoff
	tries     int

	built      bool
	aggregated bool
	pk, ehk    string
	data       []byte
	leftover   []entry // did not fit when built (a size estimate bug); requeued
	pooled     bool    // data came from Producer.bufs

	one [1]entry // recs of an unaggregated container: one allocation, not two
}

// misrouted is an aggregate that landed on a shard other than predicted,
// whose records must be checked against that shard's range.
type misrouted struct {
	c       *container
	shardID string
	seq     string
	misses  int // listings that did not name shardID
}

// maxMisses is how many listings may miss the shard an aggregate landed on
// before it is trusted to own the aggregate's records: a listing that began
// before the put may not know the shard yet (a split or merge just made it);
// one that never names it means the shard is gone from the stream.
const maxMisses = 3

// aggBase is the aggregate overhead: magic, MD5 and the partition key "a".
const aggBase = 20 + 1

// aggGrow bounds what the n-th record (0-based) adds to an aggregate,
// assuming its keys are new to the tables.
func aggGrow(r *Record, n int) int {
	idx := protowire.SizeVarint(uint64(n))
	inner := 1 + idx + 1 + protowire.SizeBytes(len(r.Data))
	grow := 1 + protowire.SizeBytes(len(r.PartitionKey))
	if r.ExplicitHashKey != "" {
		inner += 1 + idx
		grow += 1 + protowire.SizeBytes(len(r.ExplicitHashKey))
	}
	return grow + 1 + protowire.SizeBytes(inner)
}

// lookupLocked returns the open shard whose range holds h, or nil.
func (p *Producer) lookupLocked(h kds.HashKey) *shard {
	i, _ := slices.BinarySearchFunc(p.shards, h, func(s *shard, h kds.HashKey) int { return s.rng.Start.Cmp(h) })
	// i is the first shard starting after h (or at it).
	if i < len(p.shards) && p.shards[i].rng.Start == h {
		return p.shards[i]
	}
	if i == 0 {
		return nil
	}
	if s := p.shards[i-1]; s.rng.Contains(h) {
		return s
	}
	return nil
}

// routeLocked adds a record to its predicted shard's container, sealing
// the container first when the record would not fit. It reports whether
// the dispatcher should look.
func (p *Producer) routeLocked(e entry) bool {
	if p.aborted != nil { // Close gave up: nothing will send it
		p.completeLocked(&e, Result{Attempts: e.tries, Err: wrapLast(p.aborted, e.lastErr)})
		return false
	}
	var s *shard
	if p.mapLoaded {
		s = p.lookupLocked(e.hash)
	}
	if s == nil || !p.cfg.aggregation {
		e.stampLocked(p)
	}
	if s == nil {
		if p.mapLoaded { // the map has a hole: ask for a new one
			p.staleLocked()
		}
		p.unrouted = append(p.unrouted, e)
		return false
	}
	if !p.cfg.aggregation {
		c := &container{shard: s, putSize: len(e.rec.Data) + len(e.rec.PartitionKey)}
		c.one[0] = e
		c.recs = c.one[:]
		putAt := p.timeOf(e.putAt)
		c.due, c.expires = putAt.Add(p.cfg.linger), putAt.Add(p.cfg.ttl)
		p.enqueueLocked(c)
		return len(s.queue) == 1 || p.queued%p.cfg.collectCount == 0
	}
	grow := aggGrow(&e.rec, len(s.open))
	sealed := false
	if len(s.open) > 0 && s.openSize+grow > int(p.aggLimit.Load()) {
		p.sealLocked(s)
		grow, sealed = aggGrow(&e.rec, 0), true
	}
	if e.putAt == 0 {
		if len(s.open) > 0 {
			e.putAt = s.openStamp // at most MaxBufferedTime early
		} else {
			e.stampLocked(p)
		}
	}
	if len(s.open) == 0 {
		s.openSize, s.openStamp = aggBase, e.putAt
		if s.open == nil {
			s.open = p.slab(s.lastCount)
		}
	} else if e.putAt < s.openStamp {
		s.openStamp = e.putAt
	}
	s.open = append(s.open, e)
	s.openSize += grow
	return sealed || len(s.open) == 1
}

// stampLocked sets the record's Put time to now, unless Put did.
func (e *entry) stampLocked(p *Producer) {
	if e.putAt == 0 {
		e.putAt = p.stampOf(p.cfg.now())
	}
}

// enqueueLocked appends a sealed container to its shard's queue.
func (p *Producer) enqueueLocked(c *container) {
	c.shard.queue = append(c.shard.queue, c)
	p.queued++
}

// sealLocked closes the shard's open container and queues it.
func (p *Producer) sealLocked(s *shard) {
	if len(s.open) == 0 {
		return
	}
	openSince := p.timeOf(s.openStamp)
	c := &container{shard: s, recs: s.open, putSize: s.openSize, due: openSince.Add(p.cfg.linger)}
	if len(c.recs) == 1 {
		c.putSize = min(c.putSize, len(c.recs[0].rec.Data)+len(c.recs[0].rec.PartitionKey)+aggBase+64)
	}
	// openStamp is the oldest Put time of the container's records.
	c.expires = openSince.Add(p.cfg.ttl)
	s.lastCount = len(c.recs)
	s.open, s.openSize = nil, 0
	p.enqueueLocked(c)
}

// staleLocked marks the shard map stale: sending pauses until the refresher
// has a new one.
func (p *Producer) staleLocked() {
	if p.mapStale {
		return
	}
	p.mapStale = true
	select {
	case p.refresh <- struct{}{}:
	default:
	}
}

// refresher loads the shard map when asked: at start, and whenever a record
// lands on an unexpected shard or routing finds a hole.
func (p *Producer) refresher() {
	defer p.wg.Done()
	if _, ok := p.client.(summarizer); ok && p.cfg.maxRecordSize == 0 {
		p.describe()
	}
	for {
		select {
		case <-p.refresh:
		case <-p.stop:
			return
		}
		for attempt := 1; ; attempt++ {
			err := p.loadShardMap()
			if err == nil {
				break
			}
			p.log.Warn("listing shards failed", "err", err, "attempt", attempt)
			if backoff.Sleep(p.runCtx, backoff.Delay(p.cfg.backoffMin, p.cfg.backoffMax, attempt-1)) != nil {
				return
			}
		}
		// ListShards allows 100 calls/s per stream, shared with consumers.
		if backoff.Sleep(p.runCtx, 50*time.Millisecond) != nil {
			return
		}
	}
}

// describe reads the stream's MaxRecordSize, once, best effort.
func (p *Producer) describe() {
	ctx, cancel := context.WithTimeout(p.runCtx, p.cfg.requestTimeout)
	defer cancel()
	out, err := p.client.(summarizer).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(p.stream)}, sdkhttp.FixKinesis)
	if err != nil {
		p.log.Debug("DescribeStreamSummary failed; assuming the default MaxRecordSize", "err", err)
		return
	}
	if s := out.StreamDescriptionSummary; s != nil && s.MaxRecordSizeInKiB != nil {
		if n := int(*s.MaxRecordSizeInKiB) << 10; n > 0 && n <= kds.MaxMaxRecordSizeKiB<<10 {
			p.setMaxRecordSize(n)
		}
	}
}

type shardDesc struct {
	id   string
	rng  kds.HashKeyRange
	open bool
}

// loadShardMap lists every shard (all pages) and installs the map.
func (p *Producer) loadShardMap() error {
	var all []shardDesc
	in := &kinesis.ListShardsInput{StreamName: aws.String(p.stream)}
	for page := 0; page < 10000; page++ {
		ctx, cancel := context.WithTimeout(p.runCtx, p.cfg.requestTimeout)
		out, err := p.client.ListShards(ctx, in, sdkhttp.FixKinesis)
		cancel()
		if err != nil {
			return err
		}
		for _, s := range out.Shards {
			if s.ShardId == nil || s.HashKeyRange == nil || s.HashKeyRange.StartingHashKey == nil || s.HashKeyRange.EndingHashKey == nil {
				return fmt.Errorf("ListShards returned a shard without id or hash key range")
			}
			start, err1 := kds.ParseHashKey(*s.HashKeyRange.StartingHashKey)
			end, err2 := kds.ParseHashKey(*s.HashKeyRange.EndingHashKey)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("ListShards: shard %s has a bad hash key range", *s.ShardId)
			}
			open := s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil
			all = append(all, shardDesc{id: *s.ShardId, rng: kds.HashKeyRange{Start: start, End: end}, open: open})
		}
		if out.NextToken == nil {
			p.applyShardMap(all)
			return nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	return fmt.Errorf("ListShards: too many pages")
}

// applyShardMap installs a shard map and routes anew every record that was
// waiting for one or was predicted for a shard that has closed.
func (p *Producer) applyShardMap(all []shardDesc) {
	p.stats.refreshes.Add(1)
	now := p.cfg.now()
	p.mu.Lock()
	ranges := make(map[string]kds.HashKeyRange, len(all))
	var open []*shard
	byID := make(map[string]*shard, len(all))
	for _, d := range all {
		ranges[d.id] = d.rng
		if !d.open {
			continue
		}
		s := p.byID[d.id]
		if s == nil {
			s = &shard{id: d.id, rng: d.rng, factor: 1, last: now}
			s.recTok, s.byteTok = p.recRate(s), p.byteRate(s)
		}
		open = append(open, s)
		byID[d.id] = s
	}
	slices.SortFunc(open, func(a, b *shard) int { return a.rng.Start.Cmp(b.rng.Start) })
	var moved []entry
	for _, s := range p.shards {
		if byID[s.id] == s {
			continue
		}
		s.retired = true
		for _, c := range s.queue {
			moved = append(moved, c.recs...)
		}
		p.queued -= len(s.queue)
		moved = append(moved, s.open...)
		s.queue, s.open = nil, nil
	}
	p.shards, p.byID, p.ranges = open, byID, ranges
	p.mapLoaded, p.mapStale = true, false
	unverified := p.unverified
	p.unverified = nil
	for _, u := range unverified {
		rng, ok := ranges[u.shardID]
		if !ok {
			if u.misses++; u.misses < maxMisses {
				p.unverified = append(p.unverified, u) // list again: it may be newer than this listing
				continue
			}
			rng = kds.HashKeyRange{End: kds.MaxHashKey} // gone from the stream: trust it
		}
		p.resolveMisroutedLocked(u, rng)
	}
	if len(p.unverified) > 0 {
		p.staleLocked()
	}
	for _, e := range moved {
		p.routeLocked(e)
	}
	unrouted := p.unrouted
	p.unrouted = nil
	for _, e := range unrouted {
		p.routeLocked(e)
	}
	n := len(open)
	list := p.takeCompletedLocked()
	p.mu.Unlock()
	p.deliver(list)
	p.log.Debug("shard map loaded", "open_shards", n, "shards", len(all), "rerouted", len(moved))
	p.nudge()
}

// resolveMisroutedLocked ends the records of an aggregate that landed on a
// shard with range rng: those inside it are put; the others would be dropped
// by consumers that filter by hash range (the KCL), so they are put again.
func (p *Producer) resolveMisroutedLocked(u misrouted, rng kds.HashKeyRange) {
	again := 0
	for j := range u.c.recs {
		e := &u.c.recs[j]
		if rng.Contains(e.hash) {
			p.completeLocked(e, Result{ShardID: u.shardID, SequenceNumber: u.seq, SubSequenceNumber: int64(j), Aggregated: true, Attempts: e.tries})
			continue
		}
		again++
		p.routeLocked(*e)
	}
	if again > 0 {
		p.stats.misrouted.Add(int64(again))
		p.log.Warn("aggregate landed on a shard that does not own all its records; putting those again",
			"shard_id", u.shardID, "predicted", u.c.shard.id, "records", len(u.c.recs), "again", again)
	}
}
