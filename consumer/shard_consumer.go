package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease"
)

var errShutdownTimeout = errors.New("consumer: graceful shutdown timed out")

// outcome is how a shard's goroutine ended.
type outcome int

const (
	outcomeLost     outcome = iota // the lease was lost: nothing to release
	outcomeShutdown                // graceful stop: release the lease
	outcomeEnded                   // SHARD_END checkpointed: release the lease
)

// consumeShard is the goroutine that owns one leased shard.
func (w *worker) consumeShard(s *shardLease) {
	out := w.processShard(s)
	switch out {
	case outcomeShutdown:
		s.release(w.bg)
	case outcomeEnded:
		s.release(w.bg)
		w.requestSync() // children may be ready to take
	}
}

// stopped reports why the shard must stop, if it must.
func (s *shardLease) stopped() (outcome, bool) {
	if s.ctx.Err() != nil {
		if errors.Is(context.Cause(s.ctx), errShutdownTimeout) {
			return outcomeShutdown, true
		}
		return outcomeLost, true
	}
	select {
	case <-s.shutdown:
		return outcomeShutdown, true
	default:
		return 0, false
	}
}

// pause waits d unless the shard must stop first.
func (s *shardLease) pause(d time.Duration) (outcome, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	case <-s.shutdown:
	}
	return s.stopped()
}

func (w *worker) processShard(s *shardLease) outcome {
	if out, stop := w.waitForParents(s); stop {
		return out
	}
	l := s.snapshot()
	if l.Checkpoint.IsShardEnd() {
		return outcomeEnded
	}
	hashRange, hasRange := parseRange(l)
	proc := w.newProcessor(s)
	lostInput := LeaseLostInput{ShardID: s.shardID}
	lost := func() outcome {
		call(s.log, func() error { proc.LeaseLost(s.ctx, lostInput); return nil })
		return outcomeLost
	}

	var (
		initialized bool
		st          readState
	)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			d := backoff.Delay(100*time.Millisecond, w.cfg.retryMax, st.fails)
			st.fails++
			if out, stop := s.pause(d); stop {
				if out == outcomeLost {
					return lost()
				}
				return outcomeShutdown
			}
		}
		cp := s.snapshot().Checkpoint
		if cp.IsZero() {
			cp = w.cfg.initialFor(s.stream).cp
		}
		ckp := &Checkpointer{shard: s, last: cp}
		if !initialized {
			if err := call(s.log, func() error {
				l := s.snapshot()
				return proc.Initialize(s.ctx, InitializeInput{ShardID: s.shardID, Stream: s.stream, Checkpoint: cp,
					PendingCheckpoint: l.PendingCheckpoint, PendingCheckpointState: l.PendingCheckpointState})
			}); err != nil {
				w.cfg.hooks.processError(s.shardID, err)
				s.log.Error("processor Initialize failed; retrying", "err", err)
				continue
			}
			initialized = true
		}
		from := startPosition{cp: cp, ts: w.cfg.initialFor(s.stream).ts}
		resumeAfter := cp
		if cp.IsSentinel() {
			resumeAfter = lease.Checkpoint{}
			if st.firstDelivered != "" {
				// Never rewind to LATEST past records already read.
				from = startPosition{cp: lease.Checkpoint{SequenceNumber: st.firstDelivered}}
			}
		}
		s.log.Debug("reading shard", "from", from.cp.String())
		out, retry := w.readShard(s, proc, ckp, from, resumeAfter, hashRange, hasRange, &st)
		ckp.close()
		if retry {
			continue
		}
		if out == outcomeLost {
			return lost()
		}
		return out
	}
}

// readState is what a shard consumer remembers across restarts of its
// reader.
type readState struct {
	// firstDelivered is the first record delivered while the checkpoint
	// was still a sentinel: a rewind starts there, not at LATEST.
	firstDelivered string
	// dropsCounted is the last Kinesis record whose out-of-range user
	// records were counted.
	dropsCounted string
	// fails counts consecutive failed attempts, for the back-off.
	fails int
}

// readShard delivers the shard from one reader until the shard ends, the
// shard must stop, or a batch fails (retry: start again from the
// checkpoint).
func (w *worker) readShard(s *shardLease, proc RecordProcessor, ckp *Checkpointer, from startPosition, resumeAfter lease.Checkpoint,
	hashRange kds.HashKeyRange, hasRange bool, st *readState) (out outcome, retry bool) {
	// readCtx ends on a graceful shutdown too, to stop waiting for a batch.
	readCtx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		select {
		case <-s.shutdown:
			cancel()
		case <-readCtx.Done():
		}
	}()
	// The reader lives in the shard's context: when the lease is lost it
	// stops at once and its prefetched batches are dropped.
	r := w.newReader(s.ctx, s.stream, s.shardID, from)
	defer r.Close()

	var buf []aggregation.UserRecord
	for {
		b, synthetic, err := w.nextBatch(readCtx, r, proc)
		if err != nil {
			if out, stop := s.stopped(); stop {
				return w.stopShard(s, proc, ckp, out), false
			}
			s.log.Warn("reader stopped; restarting from the checkpoint", "err", err)
			return 0, true
		}
		if out, stop := s.stopped(); stop && out == outcomeLost {
			return outcomeLost, false // lost while the batch waited: never deliver it
		}
		if !synthetic {
			w.cfg.hooks.shardLag(s.shardID, b.millisBehind)
		}
		records, bytes := w.userRecords(s, b.records, &buf, resumeAfter, hashRange, hasRange, st)
		failed := func(err error) (outcome, bool) {
			if out, stop := s.stopped(); stop && errors.Is(err, errStopping) {
				return w.stopShard(s, proc, ckp, out), false
			}
			w.cfg.hooks.processError(s.shardID, err)
			if out, stop := s.stopped(); stop && out == outcomeLost {
				return outcomeLost, false
			}
			s.log.Error("processing failed; delivering again from the last checkpoint", "err", err, "checkpoint", ckp.Last().String())
			return 0, true
		}
		if idle, ok := proc.(IdleProcessor); ok && len(records) == 0 && !b.end {
			if err := call(s.log, func() error {
				return idle.ProcessIdle(s.ctx, ProcessIdleInput{ShardID: s.shardID, MillisBehindLatest: b.millisBehind, Checkpointer: ckp})
			}); err != nil {
				return failed(err)
			}
		}
		if len(records) > 0 {
			if st.firstDelivered == "" {
				st.firstDelivered = records[0].SequenceNumber
			}
			last := records[len(records)-1]
			ckp.delivered(lease.Checkpoint{SequenceNumber: last.SequenceNumber, SubSequenceNumber: last.SubSequenceNumber})
			start := time.Now()
			err := call(s.log, func() error {
				return proc.ProcessRecords(s.ctx, ProcessRecordsInput{ShardID: s.shardID, Records: records, MillisBehindLatest: b.millisBehind, Checkpointer: ckp})
			})
			if err != nil {
				return failed(err)
			}
			st.fails = 0
			w.cfg.hooks.recordsProcessed(s.shardID, len(records), bytes, time.Since(start))
		}
		// Nothing reads the batch's data any more: Record.Data is valid
		// until the processing call returns.
		b.slabs.Release()
		if b.end {
			return w.endShard(s, proc, ckp, b.children), false
		}
		if out, stop := s.stopped(); stop {
			return w.stopShard(s, proc, ckp, out), false
		}
	}
}

// stopShard ends processing: ShutdownRequested on a graceful stop.
func (w *worker) stopShard(s *shardLease, proc RecordProcessor, ckp *Checkpointer, out outcome) outcome {
	if out != outcomeShutdown || s.ctx.Err() != nil {
		return out
	}
	if err := call(s.log, func() error {
		return proc.ShutdownRequested(s.ctx, ShutdownRequestedInput{ShardID: s.shardID, Checkpointer: ckp})
	}); err != nil {
		s.log.Warn("processor ShutdownRequested failed", "err", err)
	}
	if s.ctx.Err() != nil && !errors.Is(context.Cause(s.ctx), errShutdownTimeout) {
		return outcomeLost
	}
	return outcomeShutdown
}

// endShard finishes a closed shard as the KCL's ShutdownTask does
// (lifecycle/ShutdownTask.java takeShardEndAction): it creates the
// children's leases, records the children on the parent's lease
// (childShardIds), and only then has the processor checkpoint SHARD_END
// (retrying until it does). A worker that sees SHARD_END therefore always
// finds the children recorded.
func (w *worker) endShard(s *shardLease, proc RecordProcessor, ckp *Checkpointer, children []types.ChildShard) outcome {
	l := s.snapshot()
	prefix := l.LeaseKey[:len(l.LeaseKey)-len(s.shardID)]
	var kids []string
	for _, c := range children {
		id := aws.ToString(c.ShardId)
		kids = append(kids, id)
		child := lease.Lease{LeaseKey: prefix + id, Checkpoint: lease.TrimHorizon, ParentShardIDs: c.ParentShards}
		if c.HashKeyRange != nil {
			child.StartingHashKey = aws.ToString(c.HashKeyRange.StartingHashKey)
			child.EndingHashKey = aws.ToString(c.HashKeyRange.EndingHashKey)
		}
		ctx, cancel := context.WithTimeout(w.bg, w.opTimeout())
		if _, err := w.cfg.store.CreateLeaseIfNotExists(ctx, child); err != nil {
			s.log.Warn("creating child lease failed; shard sync will", "child", id, "err", err)
		}
		cancel()
	}
	for fails := 0; len(kids) > 0; fails++ {
		ctx, cancel := context.WithTimeout(w.bg, w.opTimeout())
		_, err := w.cfg.store.UpdateLeaseMeta(ctx, l.LeaseKey, lease.MetaUpdate{ChildShardIDs: kids})
		cancel()
		if err == nil {
			break
		}
		s.log.Warn("recording child shards on the lease failed; retrying before SHARD_END", "err", err)
		if out, stop := s.pause(backoff.Delay(100*time.Millisecond, w.cfg.retryMax, fails)); stop {
			return out
		}
	}
	ckp.delivered(lease.ShardEnd)
	for fails := 0; ; fails++ {
		err := call(s.log, func() error {
			return proc.ShardEnded(s.ctx, ShardEndedInput{ShardID: s.shardID, Checkpointer: ckp})
		})
		if err == nil && ckp.Last().IsShardEnd() {
			break
		}
		if err == nil {
			err = errors.New("the processor did not checkpoint SHARD_END")
		}
		w.cfg.hooks.processError(s.shardID, err)
		s.log.Error("shard ended but SHARD_END was not checkpointed; retrying", "err", err)
		if out, stop := s.pause(backoff.Delay(100*time.Millisecond, w.cfg.retryMax, fails)); stop {
			return out
		}
	}
	s.log.Info("shard ended", "children", kids)
	return outcomeEnded
}

// waitForParents blocks until every parent's lease is at SHARD_END (or gone:
// parents are deleted only once finished), so per-key order holds across a
// reshard.
func (w *worker) waitForParents(s *shardLease) (outcome, bool) {
	parents := s.snapshot().ParentShardIDs
	if len(parents) == 0 {
		return 0, false
	}
	prefix := s.key[:len(s.key)-len(s.shardID)]
	for waits := 0; ; waits++ {
		ready := true
		for _, p := range parents {
			ctx, cancel := context.WithTimeout(s.ctx, w.opTimeout())
			pl, err := w.cfg.store.GetLease(ctx, prefix+p)
			cancel()
			switch {
			case errors.Is(err, lease.ErrLeaseNotFound):
			case err != nil:
				s.log.Warn("reading parent lease failed", "parent", p, "err", err)
				ready = false
			case !pl.Checkpoint.IsShardEnd():
				ready = false
			}
		}
		if ready {
			return 0, false
		}
		if waits == 0 {
			s.log.Info("waiting for parent shards to end", "parents", parents)
		}
		if out, stop := s.pause(w.takeInterval()); stop {
			return out, true
		}
	}
}

// userRecords deaggregates a batch, drops user records outside the shard's
// hash range and those at or before resumeAfter (already checkpointed), and
// returns the rest with their total data size.
func (w *worker) userRecords(s *shardLease, in []types.Record, buf *[]aggregation.UserRecord, resumeAfter lease.Checkpoint,
	hashRange kds.HashKeyRange, hasRange bool, st *readState) ([]Record, int) {
	// out is made once, at the batch's size: aggregation.Count reads only
	// an aggregate's framing, and an aggregate carries hundreds of user
	// records, so growing out copied and cleared it over and over. Each
	// Kinesis record's user records pass through *buf, kept from call to
	// call: it holds one aggregate at a time, so it stays small.
	n := len(in)
	if !w.cfg.raw {
		n = 0
		for _, kr := range in {
			n += aggregation.Count(kr.Data)
		}
	}
	out := make([]Record, 0, n)
	bytes, dropped := 0, 0
	for _, kr := range in {
		rec := aggregation.KinesisRecord{
			Data: kr.Data, PartitionKey: aws.ToString(kr.PartitionKey),
			SequenceNumber: aws.ToString(kr.SequenceNumber), ApproximateArrivalTimestamp: aws.ToTime(kr.ApproximateArrivalTimestamp),
		}
		*buf = (*buf)[:0]
		if w.cfg.raw {
			*buf = append(*buf, aggregation.UserRecord{Data: rec.Data, PartitionKey: rec.PartitionKey,
				SequenceNumber: rec.SequenceNumber, ApproximateArrivalTimestamp: rec.ApproximateArrivalTimestamp})
		} else if hasRange {
			var d int
			*buf, d = aggregation.DeaggregateShard(*buf, rec, hashRange)
			if st.dropsCounted == "" || kds.CompareSequenceNumbers(rec.SequenceNumber, st.dropsCounted) > 0 {
				dropped += d // count a record once, however often it is read again
				st.dropsCounted = rec.SequenceNumber
			}
		} else {
			*buf = aggregation.Deaggregate(*buf, rec)
		}
		for _, u := range *buf {
			if u.Err != nil {
				s.log.Warn("malformed aggregate passed through as one record", "sequence", u.SequenceNumber, "err", u.Err)
			}
			if !resumeAfter.IsZero() && (lease.Checkpoint{SequenceNumber: u.SequenceNumber, SubSequenceNumber: u.SubSequenceNumber}).Compare(resumeAfter) <= 0 {
				continue
			}
			bytes += len(u.Data)
			out = append(out, Record{
				Data: u.Data, PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey,
				SequenceNumber: u.SequenceNumber, SubSequenceNumber: u.SubSequenceNumber,
				ApproximateArrivalTimestamp: u.ApproximateArrivalTimestamp, ShardID: s.shardID, Stream: s.stream, Aggregated: u.Aggregated,
			})
		}
	}
	clear(*buf) // hold no batch's data until the next one
	if dropped > 0 {
		s.log.Warn("dropped aggregated user records outside the shard's hash range", "records", dropped)
		w.cfg.hooks.recordsDropped(s.shardID, dropped)
	}
	return out, bytes
}

func parseRange(l lease.Lease) (kds.HashKeyRange, bool) {
	if l.StartingHashKey == "" || l.EndingHashKey == "" {
		return kds.HashKeyRange{}, false
	}
	start, err1 := kds.ParseHashKey(l.StartingHashKey)
	end, err2 := kds.ParseHashKey(l.EndingHashKey)
	if err1 != nil || err2 != nil {
		return kds.HashKeyRange{}, false
	}
	return kds.HashKeyRange{Start: start, End: end}, true
}

// call runs a processor method, turning a panic into an error.
func call(log interface{ Error(string, ...any) }, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("processor panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return f()
}
