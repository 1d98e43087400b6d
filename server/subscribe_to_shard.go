package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/ksp-project/ksp/internal/cborwire"
	"github.com/ksp-project/ksp/kds"
)

// SubscribeToShard answers with an event stream (application/vnd.amazon.eventstream):
// an initial-response event, then SubscribeToShardEvent events pushed as
// soon as records are committed (the shard's changed signal wakes the
// subscription; nothing polls), ending with ChildShards when the shard has
// ended, after the subscription's lifetime, or with an exception event.
//
// The response outlives the handler's concurrency slot and body budget (the
// edge gives both back before streaming) and holds no server lock while it
// writes. It buffers one event at a time (at most maxEventBytes of records):
// a subscriber that stops reading stalls only its own subscription, whose
// write is cut when the subscription ends.

const (
	contentEventStream = "application/vnd.amazon.eventstream"
	// maxEventBytes caps the record bytes of one event.
	maxEventBytes = 1 << 20
	// endGrace is how long a subscription that ended gets to write its last
	// frame before its writes are cut.
	endGrace = time.Second
	// fanOutRate is what one consumer may read of one shard, in bytes per
	// second (with limits on): events are paced to it.
	fanOutRate = 2 << 20
)

// paceWait charges n record bytes to a subscription's read bucket and
// returns how long to wait before the next event: nothing while the bucket
// (one second's worth, full at the start) has tokens, then the time its debt
// takes to repay.
func paceWait(b *bucket, n int, now time.Time) time.Duration {
	b.refill(now)
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// signal wakes every goroutine waiting on it. The zero value is ready.
type signal struct {
	mu sync.Mutex // guards: ch
	ch chan struct{}
}

// wait returns a channel closed at the next notify.
func (g *signal) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	return g.ch
}

// notify wakes the waiters; it costs a lock when there are none.
func (g *signal) notify() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}

type startingPosition struct {
	Type           *kds.IteratorType `json:"Type"`
	SequenceNumber *string           `json:"SequenceNumber,omitempty"`
	Timestamp      *epochMillis      `json:"Timestamp,omitempty"`
}

type subscribeToShardInput struct {
	ConsumerARN      *string           `json:"ConsumerARN"`
	ShardId          *string           `json:"ShardId"`
	StartingPosition *startingPosition `json:"StartingPosition"`
}

func (r *subscribeToShardInput) validate(v *validator) {
	if v.notNull("consumerARN", r.ConsumerARN != nil) {
		v.consumerARN("consumerARN", r.ConsumerARN)
	}
	v.shardID("shardId", r.ShardId, true)
	if v.notNull("startingPosition", r.StartingPosition != nil) {
		if v.notNull("startingPosition.type", r.StartingPosition.Type != nil) {
			oneOf(v, "startingPosition.type", *r.StartingPosition.Type, kds.IteratorTypes)
		}
		v.seqNum("startingPosition.sequenceNumber", r.StartingPosition.SequenceNumber)
	}
}

// eventStreamer is a response written as a long-lived stream after the
// handler returns (see serveEdge).
type eventStreamer interface {
	serveStream(w http.ResponseWriter, r *http.Request)
}

// shardSubscription is an accepted SubscribeToShard call, ready to stream.
type shardSubscription struct {
	s    *Server
	c    *call
	sub  *subscription
	st   *stream
	sh   *shard
	cons *streamConsumer
	pos  uint64

	payload []byte // the events' encoding, reused
}

func subscribeToShard(s *Server, c *call) (any, error) {
	req, err := decodeRequest[subscribeToShardInput](c)
	if err != nil {
		return nil, err
	}
	cons, err := s.findConsumer(consumerRef{ConsumerARN: req.ConsumerARN})
	if err != nil {
		return nil, err
	}
	st := cons.st
	s.mu.RLock()
	live := s.streams[st.name] == st
	s.mu.RUnlock()
	if !live {
		return nil, s.consumerNotFound(cons.arn)
	}
	st.mu.RLock()
	sh := st.shardByID(*req.ShardId)
	st.mu.RUnlock()
	if sh == nil {
		return nil, kds.Errorf(kds.ErrCodeResourceNotFound, "Shard %s in stream %s under account %s does not exist", *req.ShardId, st.name, s.opts.Account)
	}
	sp := req.StartingPosition
	pos, err := s.iteratorPosition(st, sh, &getShardIteratorInput{
		ShardId: req.ShardId, ShardIteratorType: sp.Type, StartingSequenceNumber: sp.SequenceNumber, Timestamp: sp.Timestamp,
	}, c.now.UnixMilli())
	if err != nil {
		return nil, err
	}
	sub, err := s.subscribe(c.ctx, cons, sh, c.now)
	if err != nil {
		return nil, err
	}
	st.stats.add(stSubscribeSuccess, 1)
	return &shardSubscription{s: s, c: c, sub: sub, st: st, sh: sh, cons: cons, pos: pos}, nil
}

// subscribe registers a subscription of cons to sh: refused within
// resubscribeGap of the last successful one, taking over after it.
func (s *Server) subscribe(ctx context.Context, cons *streamConsumer, sh *shard, now time.Time) (*subscription, error) {
	r := &s.consumers
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, kds.Errorf(kds.ErrCodeServiceUnavailable, "The server is shutting down.")
	}
	if cons.status != consumerActive {
		return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Consumer %s under account %s is %s, not ACTIVE.", cons.arn, s.opts.Account, cons.status)
	}
	key := subKey{consumer: cons, shardIdx: sh.idx}
	if !s.opts.DisableLimits {
		// Only admitted calls count, so a client retrying faster than the
		// limit still gets one call through per second.
		if last, called := r.calls[key]; called && now.Sub(last) < subscribeInterval {
			return nil, kds.Errorf(kds.ErrCodeLimitExceeded, "Rate exceeded for consumer %s and shard %s: one SubscribeToShard call per second.", cons.arn, sh.id)
		}
		r.calls[key] = now
	}
	if old := r.subs[key]; old != nil {
		if now.Sub(old.started) < resubscribeGap {
			return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Another active subscription exists for this consumer: %s:%s:%s:%s",
				s.opts.Account, cons.st.name, sh.id, cons.name)
		}
		old.cancel(kds.Errorf(kds.ErrCodeResourceInUse, "Another subscription to shard %s took over consumer %s.", sh.id, cons.arn))
	}
	// The request's context ends the subscription when the client goes away.
	ctx, cancelCause := context.WithCancelCause(ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, s.opts.SubscriptionLifetime)
	cancel := func(cause error) { cancelCause(cause); cancelTimeout() }
	sub := &subscription{started: now, ctx: ctx, cancel: cancel}
	r.subs[key] = sub
	return sub, nil
}

// subscribeEvent is a SubscribeToShardEvent's payload.
type subscribeEvent struct {
	recordEncoder
	childShards  []childShard
	continuation string // ContinuationSequenceNumber
	behind       int64  // MillisBehindLatest
}

// appendJSON appends the event as JSON, ChildShards left out when empty.
func (ev *subscribeEvent) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if len(ev.childShards) > 0 {
		b = append(appendChildShardsJSON(b, ev.childShards), ',')
	}
	b = append(b, `"ContinuationSequenceNumber":`...)
	b = appendJSONString(b, ev.continuation)
	b = append(b, `,"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, ev.behind, 10)
	b = append(b, `,"Records":[`...)
	for i := range ev.records {
		b = ev.appendRecord(b, i)
	}
	return append(b, "]}"...)
}

// appendCBOR is appendJSON in CBOR.
func (ev *subscribeEvent) appendCBOR(b []byte) []byte {
	fields := uint64(3)
	if len(ev.childShards) > 0 {
		fields++
	}
	b = cborwire.AppendHead(b, cborwire.Map, fields)
	if len(ev.childShards) > 0 {
		b = appendChildShardsCBOR(b, ev.childShards)
	}
	b = cborwire.AppendText(b, "ContinuationSequenceNumber")
	b = cborwire.AppendText(b, ev.continuation)
	b = cborwire.AppendText(b, "MillisBehindLatest")
	b = cborwire.AppendInt(b, ev.behind)
	b = cborwire.AppendText(b, "Records")
	b = cborwire.AppendHead(b, cborwire.Array, uint64(len(ev.records)))
	for i := range ev.records {
		b = ev.appendRecordCBOR(b, i)
	}
	return b
}

// serveStream writes the event stream until the shard ends, the
// subscription ends (lifetime, takeover, deletion, shutdown) or the client
// goes away.
func (ss *shardSubscription) serveStream(w http.ResponseWriter, r *http.Request) {
	s, sub := ss.s, ss.sub
	defer sub.cancel(nil)
	rc := http.NewResponseController(w)
	// Once the subscription ends, a write blocked on a subscriber that stopped
	// reading gets endGrace to finish, then fails, so the handler returns.
	ended := make(chan struct{})
	stop := context.AfterFunc(sub.ctx, func() {
		defer close(ended)
		rc.SetWriteDeadline(time.Now().Add(endGrace))
	})
	defer func() {
		if !stop() {
			<-ended
		}
	}()
	w.Header().Set("Content-Type", contentEventStream)
	w.WriteHeader(http.StatusOK)
	enc := eventstream.NewEncoder()
	var buf bytes.Buffer
	write := func(msg eventstream.Message) error {
		buf.Reset()
		if err := enc.Encode(&buf, msg); err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		return rc.Flush()
	}
	initial := []byte("{}")
	if ss.c.cbor {
		initial = []byte{0xa0} // an empty CBOR map
	}
	if err := write(ss.event("initial-response", initial)); err != nil {
		return
	}
	if err := ss.run(write); err != nil {
		var ke *kds.Error
		if !errors.As(err, &ke) {
			s.log.Error("subscription failed", "stream", ss.st.name, "shard_id", ss.sh.id, "err", err)
			ke = kds.Errorf(kds.ErrCodeInternalFailure, "Internal service failure; the server log has the details.")
		}
		_ = write(ss.exception(ke))
	}
}

// run pushes events until the shard ends or the subscription does. It
// returns the error to end with as an exception frame, if any.
func (ss *shardSubscription) run(write func(eventstream.Message) error) error {
	sub, sh := ss.sub, ss.sh
	sent := false
	var pace *bucket // nil: limits off
	if !ss.s.opts.DisableLimits {
		b := newBucket(fanOutRate, fanOutRate, time.Now()) // network time, like the timers that pace
		pace = &b
	}
	for {
		wake := sh.changed.wait() // before reading, so no commit is missed
		// Under the stream's lock, as GetRecords reads them: a reshard whose
		// save fails reopens the shard before it lets go.
		ss.st.mu.RLock()
		closed, endPos := sh.closed, sh.endPos
		ss.st.mu.RUnlock()
		recs, err := sh.log.Read(ss.pos, kds.MaxGetRecordsLimit, maxEventBytes)
		if err != nil {
			return err
		}
		_, visible, lastArrival := sh.log.Bounds()
		ev := subscribeEvent{recordEncoder: recordEncoder{sh: sh, records: recs}}
		if n := len(recs); n > 0 {
			ss.pos = recs[n-1].Position + 1
			if ss.pos < visible {
				ev.behind = max(0, lastArrival-recs[n-1].ArrivalMilli)
			}
		}
		atEnd := closed && ss.pos >= endPos
		if atEnd {
			ev.childShards = ss.st.childShards(sh)
		}
		// The continuation is the last record delivered (the shard's ending
		// number at its end). Before the first record of a shard there is
		// none to give, so no empty event is sent then: a client that
		// re-subscribes uses its first position again. The first event
		// otherwise goes out at once, records or not, to report the position.
		send := true
		switch {
		case atEnd:
			ev.continuation = ss.st.endSeq(sh, endPos)
		case ss.pos > 0 && (len(recs) > 0 || !sent):
			ev.continuation = ss.st.seq(sh, ss.pos-1)
		default:
			send = false
		}
		if send {
			// Counted before it goes out, so a client that has the event
			// sees it counted.
			ss.st.countRead(sh, recs, time.Now().UnixMilli(), true)
			if err := ss.send(write, &ev); err != nil {
				return nil // the client is gone or cut off: nothing more to tell it
			}
			sent = true
		}
		if atEnd {
			return nil
		}
		if pace != nil {
			n := 0
			for i := range recs {
				n += recs[i].Size()
			}
			if d := paceWait(pace, n, time.Now()); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-sub.ctx.Done():
					t.Stop()
					return endCause(sub.ctx)
				}
			}
		}
		if len(recs) > 0 && ss.pos < visible {
			continue // more to send already
		}
		select {
		case <-wake:
		case <-sub.ctx.Done():
			return endCause(sub.ctx)
		}
	}
}

// endCause is the exception a subscription ended with, or nil for a clean
// end (lifetime over, shutdown, the client left).
func endCause(ctx context.Context) error {
	var ke *kds.Error
	if errors.As(context.Cause(ctx), &ke) {
		return ke
	}
	return nil
}

func (ss *shardSubscription) send(write func(eventstream.Message) error, ev *subscribeEvent) error {
	// write encodes the message before it returns: the payload's buffer
	// serves the subscription's next event.
	if ss.c.cbor {
		ss.payload = ev.appendCBOR(ss.payload[:0])
	} else {
		ss.payload = ev.appendJSON(ss.payload[:0])
	}
	return write(ss.event("SubscribeToShardEvent", ss.payload))
}

func (ss *shardSubscription) contentType() string {
	if ss.c.cbor {
		return contentCBOR
	}
	return "application/json"
}

func (ss *shardSubscription) event(typ string, payload []byte) eventstream.Message {
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	msg.Headers.Set(":event-type", eventstream.StringValue(typ))
	msg.Headers.Set(":content-type", eventstream.StringValue(ss.contentType()))
	msg.Payload = payload
	return msg
}

func (ss *shardSubscription) exception(ke *kds.Error) eventstream.Message {
	var payload []byte
	body := map[string]string{"message": ke.Message}
	if ss.c.cbor {
		payload, _ = cborEnc.Marshal(body)
	} else {
		payload, _ = json.Marshal(body)
	}
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
	msg.Headers.Set(":exception-type", eventstream.StringValue(ke.Code))
	msg.Headers.Set(":content-type", eventstream.StringValue(ss.contentType()))
	msg.Payload = payload
	return msg
}
