package server

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server/store"
)

// Stream states, as DescribeStream reports them.
const (
	statusCreating = "CREATING"
	statusActive   = "ACTIVE"
	statusDeleting = "DELETING"
	statusUpdating = "UPDATING"
)

// stream is one Kinesis stream. Its metadata is guarded by mu; each shard's
// log has its own locks so writers to different shards never contend.
type stream struct {
	mu sync.RWMutex // guards: every field below except name, arn, created

	name    string
	arn     string
	created int64 // epoch ms; part of the stream's identity

	streamSettings
	shards []*shard // by index; closed shards stay
	open   []*shard // open shards sorted by starting hash key

	stats streamStats // counters for metrics, atomic
}

// streamSettings are the settings of a stream that requests change. A
// change works on a copy (clone), which is persisted and only then
// published (meta.go).
type streamSettings struct {
	status           string
	mode             kds.StreamMode
	retentionHours   int
	maxRecordSizeKiB int
	tags             map[string]string
	encryption       kds.EncryptionType
	keyID            string
	monitoring       []string
}

// clone returns a deep copy.
func (ss streamSettings) clone() streamSettings {
	ss.tags = maps.Clone(ss.tags)
	if ss.tags == nil {
		ss.tags = map[string]string{}
	}
	ss.monitoring = slices.Clone(ss.monitoring)
	return ss
}

// shard is one shard: its place in the hash space, its lineage and its log.
type shard struct {
	idx            int
	id             string
	rng            kds.HashKeyRange
	startKey       string // decimal, cached for responses
	endKey         string
	parent         string
	adjacentParent string
	createdMs      int64
	startSeq       string

	// appendMu serialises appends so positions follow request order and arrival
	// times never go backwards.
	appendMu    sync.Mutex // guards: nextPos, lastArrival, closed, closedMs, endSeq, endPos
	nextPos     uint64     // position the next appended record gets (appended, maybe not yet committed)
	lastArrival int64
	closed      bool
	closedMs    int64
	endSeq      string
	endPos      uint64 // position after the last record, once closed

	log     store.Log
	changed signal // notified when records become visible or the shard closes
	limiter *shardLimiter
	stats   shardStats // counters for metrics, atomic
	seq     seqPrefix  // head of this shard's sequence numbers

	// expired is set once the shard is closed and its whole life is past the
	// stream's retention: it is no longer listed nor readable.
	expired atomic.Bool
}

func (st *stream) seq(sh *shard, pos uint64) string {
	return seqNum{created: st.created, shardIdx: sh.idx, position: pos}.String()
}

// endSeq is the EndingSequenceNumber of a shard closed at endPos: that of its
// last record, or its starting number when it never held one.
func (st *stream) endSeq(sh *shard, endPos uint64) string {
	if endPos == 0 {
		return sh.startSeq
	}
	return st.seq(sh, endPos-1)
}

// shardFor returns the open shard whose range holds h. Caller holds st.mu.
func (st *stream) shardFor(h kds.HashKey) *shard {
	i := sort.Search(len(st.open), func(i int) bool { return st.open[i].rng.End.Cmp(h) >= 0 })
	if i < len(st.open) && st.open[i].rng.Contains(h) {
		return st.open[i]
	}
	return nil
}

// shardByID finds a shard by id. Like AWS it reads the number after the
// first '-' ("shardId-1", "shardId-000000000001"), or a bare number ("1").
func (st *stream) shardByID(id string) *shard {
	if _, digits, ok := strings.Cut(id, "-"); ok {
		id = digits
	}
	if id == "" || len(id) > 12 {
		return nil
	}
	idx := 0
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return nil
		}
		idx = idx*10 + int(id[i]-'0')
	}
	if idx >= len(st.shards) || st.shards[idx].expired.Load() {
		return nil // expired shards are gone, as on AWS
	}
	return st.shards[idx]
}

// reindexOpen rebuilds the sorted list of open shards. Caller holds st.mu.
func (st *stream) reindexOpen() {
	st.open = st.open[:0]
	for _, sh := range st.shards {
		sh.appendMu.Lock()
		closed := sh.closed
		sh.appendMu.Unlock()
		if !closed {
			st.open = append(st.open, sh)
		}
	}
	sort.Slice(st.open, func(i, j int) bool { return st.open[i].rng.Start.Cmp(st.open[j].rng.Start) < 0 })
}

func (st *stream) openShardCount() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.open)
}

// addShard appends a new open shard, creating its log. Caller holds st.mu
// (or owns st alone).
func (s *Server) addShard(st *stream, rng kds.HashKeyRange, parent, adjacent string, now time.Time) (*shard, error) {
	return s.attachShard(st, rng, parent, adjacent, now, s.store.Log)
}

// attachShard appends a shard whose log open opens.
func (s *Server) attachShard(st *stream, rng kds.HashKeyRange, parent, adjacent string, now time.Time, open func(store.LogID) (store.Log, error)) (*shard, error) {
	idx := len(st.shards)
	log, err := open(store.LogID{Stream: st.name, Created: st.created, ShardIdx: idx})
	if err != nil {
		return nil, fmt.Errorf("opening the log of shard %s of stream %s: %w", kds.ShardID(idx), st.name, err)
	}
	sh := &shard{
		idx: idx, id: kds.ShardID(idx), rng: rng,
		startKey: rng.Start.String(), endKey: rng.End.String(),
		parent: parent, adjacentParent: adjacent,
		createdMs: now.UnixMilli(), log: log, limiter: newShardLimiter(now),
		seq: newSeqPrefix(st.created, idx),
	}
	first, next, last := log.Bounds()
	sh.startSeq = st.seq(sh, first)
	sh.nextPos, sh.lastArrival = next, last
	st.shards = append(st.shards, sh)
	return sh, nil
}
