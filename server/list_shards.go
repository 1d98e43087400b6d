package server

import (
	"encoding/json"
	"sort"

	"github.com/ksp-project/ksp/kds"
)

type shardFilter struct {
	Type      kds.ShardFilterType `json:"Type"`
	ShardId   *string             `json:"ShardId,omitempty"`
	Timestamp *epochMillis        `json:"Timestamp,omitempty"`
}

type listShardsInput struct {
	streamRef
	NextToken               *string      `json:"NextToken,omitempty"`
	ExclusiveStartShardId   *string      `json:"ExclusiveStartShardId,omitempty"`
	MaxResults              *integer     `json:"MaxResults,omitempty"`
	StreamCreationTimestamp *epochMillis `json:"StreamCreationTimestamp,omitempty"`
	ShardFilter             *shardFilter `json:"ShardFilter,omitempty"`
}

func (r *listShardsInput) validate(v *validator) {
	r.streamRef.validate(v)
	v.shardID("exclusiveStartShardId", r.ExclusiveStartShardId, false)
	if r.MaxResults != nil {
		v.intRange("maxResults", int64(*r.MaxResults), 1, kds.MaxListShardsResults)
	}
	if r.NextToken != nil {
		v.length("nextToken", *r.NextToken, 1, 1048576)
	}
	if f := r.ShardFilter; f != nil {
		oneOf(v, "shardFilter.type", f.Type, kds.ShardFilterTypes)
		v.shardID("shardFilter.shardId", f.ShardId, false)
	}
}

type listShardsOutput struct {
	Shards    []shardDesc `json:"Shards"`
	NextToken *string     `json:"NextToken,omitempty"`
}

func listShards(s *Server, c *call) (any, error) {
	req, err := decodeRequest[listShardsInput](c)
	if err != nil {
		return nil, err
	}
	limit := 1000
	if req.MaxResults != nil {
		limit = int(*req.MaxResults)
	}
	after := ""
	if req.ExclusiveStartShardId != nil {
		after = *req.ExclusiveStartShardId
	}
	filter := req.ShardFilter
	ref := req.streamRef
	if req.NextToken != nil {
		if req.StreamName != nil || req.StreamARN != nil || req.ExclusiveStartShardId != nil || req.StreamCreationTimestamp != nil || req.ShardFilter != nil {
			return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "NextToken cannot be provided together with StreamName, StreamARN, ExclusiveStartShardId, ShardFilter or StreamCreationTimestamp")
		}
		t, err := decodePageToken(*req.NextToken, c.now.UnixMilli())
		if err != nil {
			return nil, err
		}
		ref = streamRef{StreamName: ptr(t.Stream)}
		after = t.After
		if req.MaxResults == nil && t.Limit > 0 {
			limit = t.Limit
		}
		if len(t.Filter) > 0 {
			filter = new(shardFilter)
			_ = json.Unmarshal(t.Filter, filter)
		}
	}
	if filter != nil {
		if err := checkShardFilter(filter); err != nil {
			return nil, err
		}
	}
	st, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.status == statusCreating {
		return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s is not ACTIVE, instead in state CREATING", st.name, s.opts.Account)
	}
	keep := liveShards(s.shardFilterFunc(st, filter, c.now.UnixMilli()))
	start := sort.Search(len(st.shards), func(i int) bool { return st.shards[i].id > after })
	out := listShardsOutput{Shards: []shardDesc{}}
	i := start
	for ; i < len(st.shards) && len(out.Shards) < limit; i++ {
		if keep(st.shards[i]) {
			out.Shards = append(out.Shards, st.shards[i].describe())
		}
	}
	more := false
	for j := i; j < len(st.shards); j++ {
		if keep(st.shards[j]) {
			more = true
			break
		}
	}
	if more {
		t := pageToken{After: st.shards[i-1].id, Limit: limit, Stream: st.name, Created: st.created, Issued: c.now.UnixMilli()}
		if filter != nil {
			t.Filter, _ = json.Marshal(filter)
		}
		out.NextToken = encodePageToken(t)
	}
	return out, nil
}

func checkShardFilter(f *shardFilter) error {
	switch f.Type {
	case kds.ShardFilterAfterShardID:
		if f.ShardId == nil {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "ShardFilter type AFTER_SHARD_ID requires a ShardId")
		}
	case kds.ShardFilterAtTimestamp, kds.ShardFilterFromTimestamp:
		if f.Timestamp == nil {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "ShardFilter type %s requires a Timestamp", f.Type)
		}
	}
	if f.ShardId != nil && f.Type != kds.ShardFilterAfterShardID {
		return kds.Errorf(kds.ErrCodeInvalidArgument, "ShardFilter type %s does not take a ShardId", f.Type)
	}
	return nil
}

// shardFilterFunc implements ListShards' ShardFilter over a stream's shards.
// Caller holds st.mu.
//   - AT_LATEST: the open shards.
//   - AT_TRIM_HORIZON: the oldest shards with data still in retention: shards
//     whose parents have aged out (or that have none), i.e. where a consumer
//     reading from the trim horizon starts.
//   - FROM_TRIM_HORIZON: every shard whose data is still in retention.
//   - AT_TIMESTAMP: shards open at that time.
//   - FROM_TIMESTAMP: shards open at that time or opened after it.
//   - AFTER_SHARD_ID: shards with a greater id.
func (s *Server) shardFilterFunc(st *stream, f *shardFilter, nowMs int64) func(*shard) bool {
	if f == nil {
		return func(*shard) bool { return true }
	}
	horizon := nowMs - int64(st.retentionHours)*3600_000
	closedAt := func(sh *shard) (int64, bool) {
		sh.appendMu.Lock()
		defer sh.appendMu.Unlock()
		return sh.closedMs, sh.closed
	}
	inRetention := func(sh *shard) bool {
		at, closed := closedAt(sh)
		return !closed || at >= horizon
	}
	switch f.Type {
	case kds.ShardFilterAtLatest:
		return func(sh *shard) bool { _, closed := closedAt(sh); return !closed }
	case kds.ShardFilterFromTrimHorizon:
		return inRetention
	case kds.ShardFilterAtTrimHorizon:
		return func(sh *shard) bool {
			if !inRetention(sh) {
				return false
			}
			for _, p := range []string{sh.parent, sh.adjacentParent} {
				if ps := st.shardByID(p); p != "" && ps != nil && inRetention(ps) {
					return false
				}
			}
			return true
		}
	case kds.ShardFilterAtTimestamp:
		ts := int64(*f.Timestamp)
		return func(sh *shard) bool {
			at, closed := closedAt(sh)
			return sh.createdMs <= ts && (!closed || at > ts)
		}
	case kds.ShardFilterFromTimestamp:
		ts := int64(*f.Timestamp)
		return func(sh *shard) bool {
			at, closed := closedAt(sh)
			return !closed || at > ts
		}
	case kds.ShardFilterAfterShardID:
		after := *f.ShardId
		return func(sh *shard) bool { return sh.id > after }
	}
	return func(*shard) bool { return true }
}
