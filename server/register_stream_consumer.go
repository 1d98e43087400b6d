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
// Options.CreateDelay (at once without one).
func registerStreamConsumer(s *Server, c *call) (any, error) {
	req, err := decodeRequest[registerStreamConsumerInput](c)
	if err != nil {
		return nil, err
	}
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
	r := &s.consumers
	r.mu.Lock()
	list := r.byStream[st]
	for _, x := range list {
		if x.name == cons.name {
			r.mu.Unlock()
			return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Consumer %s under stream %s already exists for account %s.", cons.name, st.name, s.opts.Account)
		}
	}
	if len(list) >= maxConsumers {
		r.mu.Unlock()
		return nil, kds.Errorf(kds.ErrCodeLimitExceeded, "Stream %s under account %s already has %d registered consumers, the limit.", st.name, s.opts.Account, maxConsumers)
	}
	r.byStream[st] = append(list, cons)
	r.byARN[cons.arn] = cons
	desc := cons.describeLocked(false)
	r.mu.Unlock()
	if cons.status == consumerCreating {
		s.after(s.opts.CreateDelay, func() { s.setConsumerStatus(cons, consumerCreating, consumerActive) })
	}
	return struct {
		Consumer consumerDescription `json:"Consumer"`
	}{desc}, nil
}

// deregisterStreamConsumer moves a consumer to DELETING, ends its
// subscriptions with ResourceNotFoundException, and forgets it after
// Options.CreateDelay.
func deregisterStreamConsumer(s *Server, c *call) (any, error) {
	cons, err := s.requestedConsumer(c)
	if err != nil {
		return nil, err
	}
	r := &s.consumers
	r.mu.Lock()
	cons.status = consumerDeleting
	r.endSubscriptionsLocked(func(k subKey) bool { return k.consumer == cons },
		kds.Errorf(kds.ErrCodeResourceNotFound, "Consumer %s under account %s was deregistered.", cons.arn, s.opts.Account))
	r.mu.Unlock()
	s.after(s.opts.CreateDelay, func() { s.removeConsumer(cons) })
	return empty{}, nil
}
