package server

import (
	"github.com/ksp-project/ksp/kds"
)

type getShardIteratorInput struct {
	streamRef
	ShardId                *string           `json:"ShardId"`
	ShardIteratorType      *kds.IteratorType `json:"ShardIteratorType"`
	StartingSequenceNumber *string           `json:"StartingSequenceNumber,omitempty"`
	Timestamp              *epochMillis      `json:"Timestamp,omitempty"`
}

func (r *getShardIteratorInput) validate(v *validator) {
	v.shardID("shardId", r.ShardId, true)
	if v.notNull("shardIteratorType", r.ShardIteratorType != nil) {
		oneOf(v, "shardIteratorType", *r.ShardIteratorType, kds.IteratorTypes)
	}
	v.seqNum("startingSequenceNumber", r.StartingSequenceNumber)
	r.streamRef.validate(v)
}

func getShardIterator(s *Server, c *call) (any, error) {
	req, err := decodeRequest[getShardIteratorInput](c)
	if err != nil {
		return nil, err
	}
	st, err := s.lookup(req.streamRef)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	sh := st.shardByID(*req.ShardId)
	st.mu.RUnlock()
	if sh == nil {
		return nil, kds.Errorf(kds.ErrCodeResourceNotFound, "Shard %s in stream %s under account %s does not exist", *req.ShardId, st.name, s.opts.Account)
	}
	pos, err := s.iteratorPosition(st, sh, req, c.now.UnixMilli())
	if err != nil {
		return nil, err
	}
	it := s.encodeIterator(iterator{stream: st.name, created: st.created, issued: c.now.UnixMilli(), shardIdx: sh.idx, position: pos})
	return struct {
		ShardIterator string `json:"ShardIterator"`
	}{it}, nil
}

func (s *Server) iteratorPosition(st *stream, sh *shard, req *getShardIteratorInput, nowMs int64) (uint64, error) {
	typ := *req.ShardIteratorType
	withSeq := typ == kds.IteratorAtSequenceNumber || typ == kds.IteratorAfterSequenceNumber
	if withSeq != (req.StartingSequenceNumber != nil) {
		has := "no StartingSequenceNumber"
		if req.StartingSequenceNumber != nil {
			has = "also a StartingSequenceNumber"
		}
		if typ != kds.IteratorAtTimestamp || req.StartingSequenceNumber != nil {
			return 0, kds.Errorf(kds.ErrCodeInvalidArgument,
				"Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and %s.", typ, has)
		}
	}
	first, next, _ := sh.log.Bounds()
	switch typ {
	case kds.IteratorTrimHorizon:
		return first, nil
	case kds.IteratorLatest:
		return next, nil
	case kds.IteratorAtTimestamp:
		if req.Timestamp == nil {
			return 0, kds.Errorf(kds.ErrCodeInvalidArgument, "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
		}
		ts := int64(*req.Timestamp)
		if ts > nowMs {
			return 0, kds.Errorf(kds.ErrCodeInvalidArgument, "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d", ts, nowMs)
		}
		return sh.log.SeekTime(ts)
	}
	sn, err := parseSeqNum(*req.StartingSequenceNumber)
	if err != nil {
		return 0, kds.Errorf(kds.ErrCodeInvalidArgument, "StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid.", *req.StartingSequenceNumber, sh.id, st.name, s.opts.Account)
	}
	if sn.shardIdx != sh.idx {
		return 0, kds.Errorf(kds.ErrCodeInvalidArgument, "Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a shard with %s", kds.ShardID(sn.shardIdx), sh.id)
	}
	if sn.created != st.created {
		return 0, kds.Errorf(kds.ErrCodeInvalidArgument, "StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid because it did not come from this stream.", *req.StartingSequenceNumber, sh.id, st.name, s.opts.Account)
	}
	pos := sn.position
	if typ == kds.IteratorAfterSequenceNumber {
		pos++
	}
	if pos > next {
		return 0, kds.Errorf(kds.ErrCodeInvalidArgument, "StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is beyond the end of the shard.", *req.StartingSequenceNumber, sh.id, st.name, s.opts.Account)
	}
	return pos, nil
}
