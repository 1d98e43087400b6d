package server

import (
	"github.com/ksp-project/ksp/kds"
)

type streamModeDetails struct {
	StreamMode kds.StreamMode `json:"StreamMode"`
}

type createStreamInput struct {
	StreamName         *string            `json:"StreamName"`
	ShardCount         *integer           `json:"ShardCount,omitempty"`
	StreamModeDetails  *streamModeDetails `json:"StreamModeDetails,omitempty"`
	Tags               map[string]string  `json:"Tags,omitempty"`
	MaxRecordSizeInKiB *integer           `json:"MaxRecordSizeInKiB,omitempty"`
}

func (r *createStreamInput) validate(v *validator) {
	v.name("streamName", r.StreamName, true)
	if r.ShardCount != nil {
		v.intRange("shardCount", int64(*r.ShardCount), 1, 100000)
	}
	if r.StreamModeDetails != nil {
		oneOf(v, "streamModeDetails.streamMode", r.StreamModeDetails.StreamMode, kds.StreamModes)
	}
	if r.MaxRecordSizeInKiB != nil {
		v.intRange("maxRecordSizeInKiB", int64(*r.MaxRecordSizeInKiB), kds.MinMaxRecordSizeKiB, kds.MaxMaxRecordSizeKiB)
	}
	validateTags(v, "tags", r.Tags)
}

func createStream(s *Server, c *call) (any, error) {
	req, err := decodeRequest[createStreamInput](c)
	if err != nil {
		return nil, err
	}
	mode := kds.StreamModeProvisioned
	if req.StreamModeDetails != nil {
		mode = req.StreamModeDetails.StreamMode
	}
	var count int
	switch {
	case req.ShardCount != nil:
		count = int(*req.ShardCount)
	case mode == kds.StreamModeOnDemand:
		count = kds.OnDemandDefaultShards
	default:
		return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "ShardCount is required for a stream in PROVISIONED mode")
	}
	if err := checkTagChars(*req.StreamName, s.opts.Account, req.Tags); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.streams[*req.StreamName]; exists {
		return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s already exists.", *req.StreamName, s.opts.Account)
	}
	if open := s.openShardsLocked(); open+count > s.opts.ShardLimit {
		return nil, kds.Errorf(kds.ErrCodeLimitExceeded,
			"This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d.",
			s.opts.Account, s.opts.Region, open, s.opts.ShardLimit, count)
	}
	created := c.now.UnixMilli()
	st := &stream{
		name: *req.StreamName, created: created,
		arn:    kds.StreamARN(s.opts.Region, s.opts.Account, *req.StreamName),
		status: statusCreating, mode: mode, retentionHours: kds.DefaultRetentionHours,
		maxRecordSizeKiB: kds.DefaultMaxRecordSize >> 10, tags: map[string]string{}, encryption: kds.EncryptionNone,
	}
	if req.MaxRecordSizeInKiB != nil {
		st.maxRecordSizeKiB = int(*req.MaxRecordSizeInKiB)
	}
	for k, v := range req.Tags {
		st.tags[k] = v
	}
	for _, rng := range kds.SplitHashKeySpace(count) {
		if _, err := s.addShard(st, rng, "", "", c.now); err != nil {
			_ = s.store.DropStream(st.name, st.created)
			return nil, err
		}
	}
	st.reindexOpen()
	if s.opts.CreateDelay <= 0 {
		st.status = statusActive
	}
	s.streams[st.name] = st
	if err := s.saveMetaLocked(); err != nil {
		delete(s.streams, st.name)
		return nil, err
	}
	if st.status == statusCreating {
		s.after(s.opts.CreateDelay, func() { s.setStatus(st, statusCreating, statusActive) })
	}
	return empty{}, nil
}

// setStatus moves st from one status to another if it is still in from.
func (s *Server) setStatus(st *stream, from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	if st.status != from {
		st.mu.Unlock()
		return
	}
	st.status = to
	st.mu.Unlock()
	if err := s.saveMetaLocked(); err != nil {
		s.log.Error("saving metadata", "stream", st.name, "err", err)
	}
}

// openShardsLocked counts open shards across streams. Caller holds s.mu.
func (s *Server) openShardsLocked() int {
	n := 0
	for _, st := range s.streams {
		n += st.openShardCount()
	}
	return n
}

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion *bool `json:"EnforceConsumerDeletion,omitempty"`
}

func deleteStream(s *Server, c *call) (any, error) {
	req, err := decodeRequest[deleteStreamInput](c)
	if err != nil {
		return nil, err
	}
	name, err := s.refName(req.streamRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return nil, s.notFound(name)
	}
	if err := s.checkConsumerDeletion(st, req.EnforceConsumerDeletion); err != nil {
		return nil, err
	}
	st.mu.Lock()
	st.status = statusDeleting
	st.mu.Unlock()
	s.dropStreamConsumers(st)
	drop := func() {
		_ = s.store.DropStream(st.name, st.created)
	}
	if s.opts.CreateDelay <= 0 {
		delete(s.streams, name)
		if err := s.saveMetaLocked(); err != nil {
			return nil, err
		}
		drop()
		return empty{}, nil
	}
	if err := s.saveMetaLocked(); err != nil {
		return nil, err
	}
	s.after(s.opts.CreateDelay, func() {
		s.mu.Lock()
		if s.streams[name] == st {
			delete(s.streams, name)
			if err := s.saveMetaLocked(); err != nil {
				s.log.Error("saving metadata", "stream", name, "err", err)
			}
		}
		s.mu.Unlock()
		drop()
	})
	return empty{}, nil
}
