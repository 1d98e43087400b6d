package server

import (
	"slices"

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
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	streams := s.streamList()
	for _, st := range streams {
		if st.name == *req.StreamName {
			return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s already exists.", *req.StreamName, s.opts.Account)
		}
	}
	if open := openShards(streams); open+count > s.opts.ShardLimit {
		return nil, kds.Errorf(kds.ErrCodeLimitExceeded,
			"This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d.",
			s.opts.Account, s.opts.Region, open, s.opts.ShardLimit, count)
	}
	// Prepare: the stream and its logs exist only here until saved.
	created := c.now.UnixMilli()
	st := &stream{
		name: *req.StreamName, created: created,
		arn: kds.StreamARN(s.opts.Region, s.opts.Account, *req.StreamName),
		streamSettings: streamSettings{
			status: statusCreating, mode: mode, retentionHours: kds.DefaultRetentionHours,
			maxRecordSizeKiB: kds.DefaultMaxRecordSize >> 10, tags: map[string]string{}, encryption: kds.EncryptionNone,
		},
	}
	if req.MaxRecordSizeInKiB != nil {
		st.maxRecordSizeKiB = int(*req.MaxRecordSizeInKiB)
	}
	for k, v := range req.Tags {
		st.tags[k] = v
	}
	if s.opts.CreateDelay <= 0 {
		st.status = statusActive
	}
	saved := false
	defer func() {
		if !saved {
			// Leave no directory behind (also when a log could not be opened).
			if err := s.store.DropStream(st.name, st.created); err != nil {
				s.log.Error("removing the logs of a stream whose creation failed", "stream", st.name, "err", err)
			}
		}
	}()
	for _, rng := range kds.SplitHashKeySpace(count) {
		if _, err := s.addShard(st, rng, "", "", c.now); err != nil {
			return nil, s.storeFailure("creating a stream", err)
		}
	}
	st.reindexOpen()
	// Persist, then publish.
	if err := s.persist(append(streams, st), nil); err != nil {
		return nil, err
	}
	saved = true
	s.mu.Lock()
	s.streams[st.name] = st
	s.mu.Unlock()
	if st.status == statusCreating {
		s.after(s.opts.CreateDelay, func() { s.setStatus(st, statusCreating, statusActive) })
	}
	return empty{}, nil
}

// openShards counts the open shards of streams.
func openShards(streams []*stream) int {
	n := 0
	for _, st := range streams {
		n += st.openShardCount()
	}
	return n
}

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion *bool `json:"EnforceConsumerDeletion,omitempty"`
}

// deleteStream saves the metadata without the stream (or, with
// CreateDelay, with it DELETING) before anything else: a failed save leaves
// the stream as it was.
func deleteStream(s *Server, c *call) (any, error) {
	req, err := decodeRequest[deleteStreamInput](c)
	if err != nil {
		return nil, err
	}
	name, err := s.refName(req.streamRef)
	if err != nil {
		return nil, err
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	st, err := s.lookup(req.streamRef)
	if err != nil {
		return nil, err
	}
	if err := s.checkConsumerDeletion(st, req.EnforceConsumerDeletion); err != nil {
		return nil, err
	}
	if s.opts.CreateDelay > 0 {
		st.mu.RLock()
		set := st.streamSettings.clone()
		st.mu.RUnlock()
		set.status = statusDeleting
		if err := s.saveSettings(st, set); err != nil {
			return nil, err
		}
		s.dropStreamConsumers(st)
		s.after(s.opts.CreateDelay, func() { s.removeStream(st) })
		return empty{}, nil
	}
	if err := s.dropStreamLocked(name, st); err != nil {
		return nil, err
	}
	s.dropStreamConsumers(st)
	return empty{}, nil
}

// removeStream finishes a delayed DeleteStream; a failed save is retried
// after another CreateDelay.
func (s *Server) removeStream(st *stream) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	if s.lookupExact(st) == nil {
		return
	}
	if err := s.dropStreamLocked(st.name, st); err != nil {
		s.log.Error("deleting stream; retrying", "stream", st.name, "err", err)
		s.after(s.opts.CreateDelay, func() { s.removeStream(st) })
	}
}

// dropStreamLocked saves the metadata without st, then unpublishes it and
// deletes its logs. Caller holds metaMu.
func (s *Server) dropStreamLocked(name string, st *stream) error {
	rest := slices.DeleteFunc(s.streamList(), func(o *stream) bool { return o == st })
	if err := s.persist(rest, nil); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.streams, name)
	s.mu.Unlock()
	if err := s.store.DropStream(st.name, st.created); err != nil {
		// The metadata no longer names it: the directory is only garbage.
		s.log.Error("removing the logs of a deleted stream", "stream", st.name, "err", err)
	}
	return nil
}
