package server

import (
	"github.com/ksp-project/ksp/kds"
)

type registerStreamConsumerInput struct {
	StreamARN    *string           `json:"StreamARN"`
	ConsumerName *string           `json:"ConsumerName"`
	Tags         map[string]string `json:"Tags,omitempty"`
}

func (r *registerStreamConsumerInput) validate(v *validator) {
	if v.notNull("streamARN", r.StreamARN != nil) {
		v.streamARN("streamARN", r.StreamARN)
	}
	v.name("consumerName", r.ConsumerName, true)
	validateTags(v, "tags", r.Tags)
}

// registerStreamConsumer adds a consumer in CREATING; it becomes ACTIVE after
// Options.CreateDelay (at once without one). The consumer is saved with the
// stream's metadata before anyone can see it.
func registerStreamConsumer(s *Server, c *call) (any, error) {
	req, err := decodeRequest[registerStreamConsumerInput](c)
	if err != nil {
		return nil, err
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	st, err := s.lookup(streamRef{StreamARN: req.StreamARN})
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	status := st.status
	st.mu.RUnlock()
	if status != statusActive && status != statusUpdating {
		return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s is in %s state, not ACTIVE.", st.name, s.opts.Account, status)
	}
	created := c.now.UnixMilli()
	cons := &streamConsumer{
		st: st, name: *req.ConsumerName, created: created, status: consumerCreating,
		arn: kds.ConsumerARN(st.arn, *req.ConsumerName, created/1000),
	}
	if s.opts.CreateDelay <= 0 {
		cons.status = consumerActive
	}
	metas, err := s.prepareRegistration(cons)
	if err != nil {
		return nil, err
	}
	if err := s.saveConsumers(st, metas); err != nil {
		return nil, err
	}
	r := &s.consumers
	r.mu.Lock()
	r.byStream[st] = append(r.byStream[st], cons)
	r.byARN[cons.arn] = cons
	desc := cons.describeLocked(false)
	r.mu.Unlock()
	if cons.status == consumerCreating {
		s.after(s.opts.CreateDelay, func() { s.finishConsumer(cons, consumerCreating, consumerActive) })
	}
	return struct {
		Consumer consumerDescription `json:"Consumer"`
	}{desc}, nil
}

// prepareRegistration checks that cons may join its stream's consumers and
// returns their description with it.
func (s *Server) prepareRegistration(cons *streamConsumer) ([]consumerMeta, error) {
	r := &s.consumers
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.byStream[cons.st]
	for _, x := range list {
		if x.name == cons.name {
			return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Consumer %s under stream %s already exists for account %s.", cons.name, cons.st.name, s.opts.Account)
		}
	}
	if len(list) >= maxConsumers {
		return nil, kds.Errorf(kds.ErrCodeLimitExceeded, "Stream %s under account %s already has %d registered consumers, the limit.", cons.st.name, s.opts.Account, maxConsumers)
	}
	return append(consumerMetasLocked(list, nil, ""), consumerMeta{Name: cons.name, Created: cons.created, Status: cons.status}), nil
}

// deregisterStreamConsumer saves the consumer as DELETING (or, without
// Options.CreateDelay, gone), then ends its subscriptions with
// ResourceNotFoundException; a DELETING consumer is forgotten after
// CreateDelay. A consumer already DELETING stays as it is.
func deregisterStreamConsumer(s *Server, c *call) (any, error) {
	req, err := decodeRequest[consumerRef](c)
	if err != nil {
		return nil, err
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	cons, err := s.findConsumer(*req)
	if err != nil {
		return nil, err
	}
	r := &s.consumers
	r.mu.Lock()
	deleting := cons.status == consumerDeleting
	r.mu.Unlock()
	if deleting {
		return empty{}, nil
	}
	to := consumerDeleting
	if s.opts.CreateDelay <= 0 {
		to = ""
	}
	if err := s.setConsumer(cons, to); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.endSubscriptionsLocked(func(k subKey) bool { return k.consumer == cons },
		kds.Errorf(kds.ErrCodeResourceNotFound, "Consumer %s under account %s was deregistered.", cons.arn, s.opts.Account))
	r.mu.Unlock()
	if to == consumerDeleting {
		s.after(s.opts.CreateDelay, func() { s.finishConsumer(cons, consumerDeleting, "") })
	}
	return empty{}, nil
}
