package server

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ksp-project/ksp/kds"
)

// Stream consumers (enhanced fan-out) are part of each stream's metadata:
// every registration, deregistration and status change is saved before it
// is published (meta.go), so a restarted server lists the same consumers
// with the same ARNs and creation times. Subscriptions are not kept: a
// client re-subscribes after a restart as after any broken stream. Each
// consumer belongs to one stream incarnation (the *stream, so a re-created
// stream never sees the old one's consumers).

// Consumer states, as DescribeStreamConsumer reports them.
const (
	consumerCreating = "CREATING"
	consumerActive   = "ACTIVE"
	consumerDeleting = "DELETING"
)

const (
	// maxConsumers is AWS's limit of registered consumers per stream.
	maxConsumers = 20
	// resubscribeGap is how long after a successful SubscribeToShard another
	// one for the same consumer and shard is refused rather than taking over.
	resubscribeGap = 5 * time.Second
	// subscribeInterval is AWS's rate limit: one SubscribeToShard call per
	// second per consumer and shard.
	subscribeInterval = time.Second
	// defaultSubscriptionLifetime is how long a subscription lives on AWS.
	defaultSubscriptionLifetime = 5 * time.Minute
)

// streamConsumer is one registered consumer. Its fields are fixed at
// registration except status, which consumerRegistry.mu guards.
type streamConsumer struct {
	st      *stream
	name    string
	arn     string
	created int64 // epoch ms
	status  string
}

// consumerRegistry holds the consumers of every stream and the live
// subscriptions. Its lock is never held while writing to a subscriber.
type consumerRegistry struct {
	mu       sync.Mutex // guards: byStream, byARN, subs, calls, closed, every consumer's status
	byStream map[*stream][]*streamConsumer
	byARN    map[string]*streamConsumer
	subs     map[subKey]*subscription
	calls    map[subKey]time.Time // the last SubscribeToShard call, for the 1 call/s limit
	closed   bool
}

// subKey names the one subscription a consumer may hold on a shard.
type subKey struct {
	consumer *streamConsumer
	shardIdx int
}

// subscription is one SubscribeToShard call's stream of events.
type subscription struct {
	started time.Time // on the server's clock (Options.Now), for the 5 s rule
	ctx     context.Context
	cancel  context.CancelCauseFunc // cause: the exception frame to end with (nil: a clean end)
}

func (r *consumerRegistry) init() {
	r.byStream = make(map[*stream][]*streamConsumer)
	r.byARN = make(map[string]*streamConsumer)
	r.subs = make(map[subKey]*subscription)
	r.calls = make(map[subKey]time.Time)
}

// endSubscriptions ends the subscriptions matching drop with cause. Caller holds r.mu.
func (r *consumerRegistry) endSubscriptionsLocked(drop func(subKey) bool, cause error) {
	for k, sub := range r.subs {
		if drop(k) {
			sub.cancel(cause)
			delete(r.subs, k)
		}
	}
	for k := range r.calls {
		if drop(k) {
			delete(r.calls, k)
		}
	}
}

// close ends every subscription (cleanly) and refuses new ones; Shutdown
// calls it so that long-lived responses do not hold it up.
func (r *consumerRegistry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.endSubscriptionsLocked(func(subKey) bool { return true }, nil)
}

// dropStream forgets the consumers of a deleted stream; their subscriptions
// end with ResourceNotFoundException.
func (s *Server) dropStreamConsumers(st *stream) {
	r := &s.consumers
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.byStream[st] {
		delete(r.byARN, c.arn)
	}
	delete(r.byStream, st)
	r.endSubscriptionsLocked(func(k subKey) bool { return k.consumer.st == st },
		kds.Errorf(kds.ErrCodeResourceNotFound, "Stream %s under account %s was deleted.", st.name, s.opts.Account))
}

// checkConsumerDeletion refuses to delete a stream that has consumers
// unless the request enforces their deletion, as AWS does.
func (s *Server) checkConsumerDeletion(st *stream, enforce *bool) error {
	if enforce != nil && *enforce {
		return nil
	}
	s.consumers.mu.Lock()
	n := len(s.consumers.byStream[st])
	s.consumers.mu.Unlock()
	if n > 0 {
		return kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s has %d registered consumers; delete them first or set EnforceConsumerDeletion.", st.name, s.opts.Account, n)
	}
	return nil
}

// consumerRef is how requests name a consumer: by ConsumerARN, or by
// StreamARN and ConsumerName.
type consumerRef struct {
	StreamARN    *string `json:"StreamARN,omitempty"`
	ConsumerName *string `json:"ConsumerName,omitempty"`
	ConsumerARN  *string `json:"ConsumerARN,omitempty"`
}

func (r *consumerRef) validate(v *validator) {
	v.streamARN("streamARN", r.StreamARN)
	v.name("consumerName", r.ConsumerName, false)
	v.consumerARN("consumerARN", r.ConsumerARN)
}

const consumerARNPattern = "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+"

func (v *validator) consumerARN(field string, s *string) {
	if s == nil {
		return
	}
	v.length(field, *s, 1, 2048)
	_, err := parseConsumerARN(*s)
	v.pattern(field, *s, consumerARNPattern, err == nil)
}

// parseConsumerARN checks arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:EPOCH
// and returns its stream's ARN.
func parseConsumerARN(arn string) (streamARN string, err error) {
	head, tail, ok := strings.Cut(arn, "/consumer/")
	bad := kds.Errorf(kds.ErrCodeInvalidArgument, "ConsumerARN %s is not a valid consumer ARN", arn)
	if !ok {
		return "", bad
	}
	if _, _, _, err := kds.ParseStreamARN(head); err != nil {
		return "", bad
	}
	i := strings.LastIndexByte(tail, ':')
	if i <= 0 || !isNameChars(tail[:i]) {
		return "", bad
	}
	if epoch, err := strconv.ParseInt(tail[i+1:], 10, 64); err != nil || epoch < 0 {
		return "", bad
	}
	return head, nil
}

func (s *Server) consumerNotFound(what string) error {
	return kds.Errorf(kds.ErrCodeResourceNotFound, "Consumer %s under account %s not found.", what, s.opts.Account)
}

// findConsumer resolves a consumerRef to a registered consumer (any state).
func (s *Server) findConsumer(ref consumerRef) (*streamConsumer, error) {
	r := &s.consumers
	if ref.ConsumerARN != nil {
		streamARN, err := parseConsumerARN(*ref.ConsumerARN)
		if err != nil {
			return nil, err
		}
		if ref.StreamARN != nil && *ref.StreamARN != streamARN {
			return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "ConsumerARN %s is not a consumer of stream %s", *ref.ConsumerARN, *ref.StreamARN)
		}
		r.mu.Lock()
		c := r.byARN[*ref.ConsumerARN]
		r.mu.Unlock()
		if c == nil || (ref.ConsumerName != nil && *ref.ConsumerName != c.name) {
			return nil, s.consumerNotFound(*ref.ConsumerARN)
		}
		return c, nil
	}
	if ref.StreamARN == nil || ref.ConsumerName == nil {
		return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "Either ConsumerARN or both StreamARN and ConsumerName must be provided")
	}
	st, err := s.lookup(streamRef{StreamARN: ref.StreamARN})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.byStream[st] {
		if c.name == *ref.ConsumerName {
			return c, nil
		}
	}
	return nil, s.consumerNotFound(*ref.ConsumerName + " under stream " + st.name)
}

// requestedConsumer decodes a request that names a consumer and finds it.
func (s *Server) requestedConsumer(c *call) (*streamConsumer, error) {
	req, err := decodeRequest[consumerRef](c)
	if err != nil {
		return nil, err
	}
	return s.findConsumer(*req)
}

// consumerDescription is a consumer as the consumer APIs describe it.
type consumerDescription struct {
	ConsumerName              string      `json:"ConsumerName"`
	ConsumerARN               string      `json:"ConsumerARN"`
	ConsumerStatus            string      `json:"ConsumerStatus"`
	ConsumerCreationTimestamp epochMillis `json:"ConsumerCreationTimestamp"`
	StreamARN                 string      `json:"StreamARN,omitempty"`
}

// describe snapshots c. Caller holds s.consumers.mu.
func (c *streamConsumer) describeLocked(withStream bool) consumerDescription {
	d := consumerDescription{ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.status, ConsumerCreationTimestamp: epochMillis(c.created)}
	if withStream {
		d.StreamARN = c.st.arn
	}
	return d
}

// consumerMetas describes st's consumers for the metadata document.
func (s *Server) consumerMetas(st *stream) []consumerMeta {
	r := &s.consumers
	r.mu.Lock()
	defer r.mu.Unlock()
	return consumerMetasLocked(r.byStream[st], nil, "")
}

// consumerMetasLocked describes list with c in status to, or without c when
// to is "". Caller holds s.consumers.mu.
func consumerMetasLocked(list []*streamConsumer, c *streamConsumer, to string) []consumerMeta {
	out := make([]consumerMeta, 0, len(list)+1)
	for _, x := range list {
		m := consumerMeta{Name: x.name, Created: x.created, Status: x.status}
		if x == c {
			if to == "" {
				continue
			}
			m.Status = to
		}
		out = append(out, m)
	}
	return out
}

// restoreConsumers registers st's consumers from the metadata document,
// finishing what the restart interrupted as AWS would have: a CREATING
// consumer is ACTIVE, a DELETING one gone (the next save drops it).
func (s *Server) restoreConsumers(st *stream, metas []consumerMeta) {
	r := &s.consumers
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range metas {
		if m.Status == consumerDeleting {
			continue
		}
		c := &streamConsumer{
			st: st, name: m.Name, created: m.Created, status: consumerActive,
			arn: kds.ConsumerARN(st.arn, m.Name, m.Created/1000),
		}
		r.byStream[st] = append(r.byStream[st], c)
		r.byARN[c.arn] = c
	}
}

// setConsumer moves the registered consumer c to status to (removes it when
// to is ""): it saves the metadata with the change, then publishes it. A
// failed save changes nothing. Caller holds metaMu, under which the set of
// consumers and their statuses cannot change.
func (s *Server) setConsumer(c *streamConsumer, to string) error {
	r := &s.consumers
	r.mu.Lock()
	metas := consumerMetasLocked(r.byStream[c.st], c, to)
	r.mu.Unlock()
	if err := s.saveConsumers(c.st, metas); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if to == "" {
		r.forgetLocked(c)
	} else {
		c.status = to
	}
	return nil
}

// saveConsumers persists the metadata with metas as st's consumers. Caller
// holds metaMu.
func (s *Server) saveConsumers(st *stream, metas []consumerMeta) error {
	return s.persistWith(s.streamList(), nil, map[*stream][]consumerMeta{st: metas})
}

// finishConsumer ends a CreateDelay: it moves c from one status to another
// ("" removes it) if c is still registered in from. A failed save is retried
// after another CreateDelay.
func (s *Server) finishConsumer(c *streamConsumer, from, to string) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	r := &s.consumers
	r.mu.Lock()
	current := r.byARN[c.arn] == c && c.status == from
	r.mu.Unlock()
	if !current || s.lookupExact(c.st) == nil {
		return
	}
	if err := s.setConsumer(c, to); err != nil {
		s.log.Error("saving metadata; retrying", "stream", c.st.name, "consumer", c.name, "status", to, "err", err)
		s.after(s.opts.CreateDelay, func() { s.finishConsumer(c, from, to) })
	}
}

// forgetLocked removes c from the registry. Caller holds r.mu.
func (r *consumerRegistry) forgetLocked(c *streamConsumer) {
	if r.byARN[c.arn] == c {
		delete(r.byARN, c.arn)
	}
	list := r.byStream[c.st]
	for i, x := range list {
		if x == c {
			r.byStream[c.st] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(r.byStream[c.st]) == 0 {
		delete(r.byStream, c.st)
	}
}
