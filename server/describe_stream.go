package server

import (
	"sort"

	"github.com/ksp-project/ksp/kds"
)

type hashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

type sequenceNumberRange struct {
	StartingSequenceNumber string  `json:"StartingSequenceNumber"`
	EndingSequenceNumber   *string `json:"EndingSequenceNumber,omitempty"`
}

type shardDesc struct {
	ShardId               string              `json:"ShardId"`
	ParentShardId         *string             `json:"ParentShardId,omitempty"`
	AdjacentParentShardId *string             `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          hashKeyRange        `json:"HashKeyRange"`
	SequenceNumberRange   sequenceNumberRange `json:"SequenceNumberRange"`
}

func (sh *shard) describe() shardDesc {
	d := shardDesc{
		ShardId:             sh.id,
		HashKeyRange:        hashKeyRange{StartingHashKey: sh.startKey, EndingHashKey: sh.endKey},
		SequenceNumberRange: sequenceNumberRange{StartingSequenceNumber: sh.startSeq},
	}
	if sh.parent != "" {
		d.ParentShardId = ptr(sh.parent)
	}
	if sh.adjacentParent != "" {
		d.AdjacentParentShardId = ptr(sh.adjacentParent)
	}
	sh.appendMu.Lock()
	if sh.closed {
		d.SequenceNumberRange.EndingSequenceNumber = ptr(sh.endSeq)
	}
	sh.appendMu.Unlock()
	return d
}

type enhancedMetrics struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

type streamDescription struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails  `json:"StreamModeDetails"`
	Shards                  []shardDesc        `json:"Shards"`
	HasMoreShards           bool               `json:"HasMoreShards"`
	RetentionPeriodHours    int                `json:"RetentionPeriodHours"`
	StreamCreationTimestamp epochMillis        `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics  `json:"EnhancedMonitoring"`
	EncryptionType          kds.EncryptionType `json:"EncryptionType"`
	KeyId                   *string            `json:"KeyId,omitempty"`
	MaxRecordSizeInKiB      int                `json:"MaxRecordSizeInKiB,omitempty"`
}

type describeStreamInput struct {
	streamRef
	Limit                 *integer `json:"Limit,omitempty"`
	ExclusiveStartShardId *string  `json:"ExclusiveStartShardId,omitempty"`
}

func (r *describeStreamInput) validate(v *validator) {
	r.streamRef.validate(v)
	if r.Limit != nil {
		v.intRange("limit", int64(*r.Limit), 1, 10000)
	}
	v.shardID("exclusiveStartShardId", r.ExclusiveStartShardId, false)
}

func describeStream(s *Server, c *call) (any, error) {
	req, err := decodeRequest[describeStreamInput](c)
	if err != nil {
		return nil, err
	}
	st, err := s.lookup(req.streamRef)
	if err != nil {
		return nil, err
	}
	limit := 100
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := st.summaryLocked()
	d.Shards = []shardDesc{}
	start := 0
	if req.ExclusiveStartShardId != nil {
		// Shards are listed in id order; start after the named one (which need not exist).
		start = sort.Search(len(st.shards), func(i int) bool { return st.shards[i].id > *req.ExclusiveStartShardId })
	}
	i := start
	for ; i < len(st.shards) && len(d.Shards) < limit; i++ {
		if !st.shards[i].expired.Load() {
			d.Shards = append(d.Shards, st.shards[i].describe())
		}
	}
	for ; i < len(st.shards) && !d.HasMoreShards; i++ {
		d.HasMoreShards = !st.shards[i].expired.Load()
	}
	return struct {
		StreamDescription streamDescription `json:"StreamDescription"`
	}{d}, nil
}

// summaryLocked fills the stream-level fields of a description. Caller holds st.mu.
func (st *stream) summaryLocked() streamDescription {
	d := streamDescription{
		StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
		StreamModeDetails:       streamModeDetails{StreamMode: st.mode},
		RetentionPeriodHours:    st.retentionHours,
		StreamCreationTimestamp: epochMillis(st.created),
		EnhancedMonitoring:      []enhancedMetrics{{ShardLevelMetrics: append([]string{}, st.monitoring...)}},
		EncryptionType:          st.encryption,
		MaxRecordSizeInKiB:      st.maxRecordSizeKiB,
	}
	if st.keyID != "" {
		d.KeyId = ptr(st.keyID)
	}
	return d
}

type streamDescriptionSummary struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails  `json:"StreamModeDetails"`
	RetentionPeriodHours    int                `json:"RetentionPeriodHours"`
	StreamCreationTimestamp epochMillis        `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics  `json:"EnhancedMonitoring"`
	EncryptionType          kds.EncryptionType `json:"EncryptionType"`
	KeyId                   *string            `json:"KeyId,omitempty"`
	OpenShardCount          int                `json:"OpenShardCount"`
	ConsumerCount           int                `json:"ConsumerCount"`
	MaxRecordSizeInKiB      int                `json:"MaxRecordSizeInKiB,omitempty"`
}

func describeStreamSummary(s *Server, c *call) (any, error) {
	req, err := decodeRequest[streamRef](c)
	if err != nil {
		return nil, err
	}
	st, err := s.lookup(*req)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	d := st.summaryLocked()
	return struct {
		StreamDescriptionSummary streamDescriptionSummary `json:"StreamDescriptionSummary"`
	}{streamDescriptionSummary{
		StreamName: d.StreamName, StreamARN: d.StreamARN, StreamStatus: d.StreamStatus,
		StreamModeDetails: d.StreamModeDetails, RetentionPeriodHours: d.RetentionPeriodHours,
		StreamCreationTimestamp: d.StreamCreationTimestamp, EnhancedMonitoring: d.EnhancedMonitoring,
		EncryptionType: d.EncryptionType, KeyId: d.KeyId, OpenShardCount: len(st.open),
		MaxRecordSizeInKiB: d.MaxRecordSizeInKiB,
	}}, nil
}

type describeLimitsOutput struct {
	ShardLimit               int `json:"ShardLimit"`
	OpenShardCount           int `json:"OpenShardCount"`
	OnDemandStreamCount      int `json:"OnDemandStreamCount"`
	OnDemandStreamCountLimit int `json:"OnDemandStreamCountLimit"`
}

func describeLimits(s *Server, c *call) (any, error) {
	if _, err := decodeRequest[empty](c); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := describeLimitsOutput{ShardLimit: s.opts.ShardLimit, OnDemandStreamCountLimit: 50}
	for _, st := range s.streams {
		st.mu.RLock()
		out.OpenShardCount += len(st.open)
		if st.mode == kds.StreamModeOnDemand {
			out.OnDemandStreamCount++
		}
		st.mu.RUnlock()
	}
	return out, nil
}

type updateStreamModeInput struct {
	StreamARN         *string            `json:"StreamARN"`
	StreamModeDetails *streamModeDetails `json:"StreamModeDetails"`
}

func (r *updateStreamModeInput) validate(v *validator) {
	if v.notNull("streamARN", r.StreamARN != nil) {
		v.streamARN("streamARN", r.StreamARN)
	}
	if v.notNull("streamModeDetails", r.StreamModeDetails != nil) {
		oneOf(v, "streamModeDetails.streamMode", r.StreamModeDetails.StreamMode, kds.StreamModes)
	}
}

func updateStreamMode(s *Server, c *call) (any, error) {
	req, err := decodeRequest[updateStreamModeInput](c)
	if err != nil {
		return nil, err
	}
	return s.updateStream(streamRef{StreamARN: req.StreamARN}, func(st *stream, set *streamSettings) error {
		if set.mode == req.StreamModeDetails.StreamMode {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Stream %s under account %s is already in %s mode.", st.name, s.opts.Account, set.mode)
		}
		set.mode = req.StreamModeDetails.StreamMode
		return nil
	})
}
