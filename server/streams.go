package server

import (
	"encoding/json"
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

	status           string
	mode             kds.StreamMode
	retentionHours   int
	maxRecordSizeKiB int
	tags             map[string]string
	encryption       kds.EncryptionType
	keyID            string
	monitoring       []string
	shards           []*shard // by index; closed shards stay
	open             []*shard // open shards sorted by starting hash key
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
	seq     seqPrefix // head of this shard's sequence numbers

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

// addShard appends a new open shard. Caller holds st.mu.
func (s *Server) addShard(st *stream, rng kds.HashKeyRange, parent, adjacent string, now time.Time) (*shard, error) {
	idx := len(st.shards)
	log, err := s.store.Log(store.LogID{Stream: st.name, Created: st.created, ShardIdx: idx})
	if err != nil {
		return nil, err
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

// metaDoc is the server's persisted metadata: the iterator key and every stream.
type metaDoc struct {
	IteratorKey []byte       `json:"iteratorKey"`
	Streams     []streamMeta `json:"streams"`
}

type streamMeta struct {
	Name             string             `json:"name"`
	Created          int64              `json:"created"`
	Status           string             `json:"status"`
	Mode             kds.StreamMode     `json:"mode"`
	RetentionHours   int                `json:"retentionHours"`
	MaxRecordSizeKiB int                `json:"maxRecordSizeKiB"`
	Tags             map[string]string  `json:"tags,omitempty"`
	Encryption       kds.EncryptionType `json:"encryption,omitempty"`
	KeyID            string             `json:"keyId,omitempty"`
	Monitoring       []string           `json:"monitoring,omitempty"`
	Shards           []shardMeta        `json:"shards"`
}

type shardMeta struct {
	Start          string `json:"start"`
	End            string `json:"end"`
	Parent         string `json:"parent,omitempty"`
	AdjacentParent string `json:"adjacentParent,omitempty"`
	Created        int64  `json:"created"`
	Closed         bool   `json:"closed,omitempty"`
	ClosedMs       int64  `json:"closedMs,omitempty"`
	EndPos         uint64 `json:"endPos,omitempty"`
	Expired        bool   `json:"expired,omitempty"`
}

// saveMeta writes the metadata document. Caller holds s.mu (read or write).
func (s *Server) saveMetaLocked() error {
	doc := metaDoc{IteratorKey: s.iterKey}
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := s.streams[n]
		st.mu.RLock()
		m := streamMeta{
			Name: st.name, Created: st.created, Status: st.status, Mode: st.mode,
			RetentionHours: st.retentionHours, MaxRecordSizeKiB: st.maxRecordSizeKiB,
			Tags: st.tags, Encryption: st.encryption, KeyID: st.keyID, Monitoring: st.monitoring,
		}
		for _, sh := range st.shards {
			sh.appendMu.Lock()
			m.Shards = append(m.Shards, shardMeta{
				Start: sh.startKey, End: sh.endKey, Parent: sh.parent, AdjacentParent: sh.adjacentParent,
				Created: sh.createdMs, Closed: sh.closed, ClosedMs: sh.closedMs, EndPos: sh.endPos,
				Expired: sh.expired.Load(),
			})
			sh.appendMu.Unlock()
		}
		st.mu.RUnlock()
		doc.Streams = append(doc.Streams, m)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return s.store.SaveMeta(b)
}

// loadMeta restores streams from the store's metadata document.
func (s *Server) loadMeta() error {
	b, err := s.store.LoadMeta()
	if err != nil || len(b) == 0 {
		return err
	}
	var doc metaDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if len(doc.IteratorKey) > 0 {
		s.iterKey = doc.IteratorKey
	}
	now := s.now()
	for _, m := range doc.Streams {
		st := &stream{
			name: m.Name, created: m.Created, arn: kds.StreamARN(s.opts.Region, s.opts.Account, m.Name),
			status: m.Status, mode: m.Mode, retentionHours: m.RetentionHours, maxRecordSizeKiB: m.MaxRecordSizeKiB,
			tags: m.Tags, encryption: m.Encryption, keyID: m.KeyID, monitoring: m.Monitoring,
		}
		if st.tags == nil {
			st.tags = map[string]string{}
		}
		if st.status == statusCreating || st.status == statusUpdating {
			st.status = statusActive
		}
		if st.status == statusDeleting {
			_ = s.store.DropStream(st.name, st.created)
			continue
		}
		for _, sm := range m.Shards {
			start, err1 := kds.ParseHashKey(sm.Start)
			end, err2 := kds.ParseHashKey(sm.End)
			if err1 != nil || err2 != nil {
				return err1
			}
			sh, err := s.addShard(st, kds.HashKeyRange{Start: start, End: end}, sm.Parent, sm.AdjacentParent, now)
			if err != nil {
				return err
			}
			sh.createdMs = sm.Created
			if sm.Closed {
				sh.closed, sh.closedMs, sh.endPos = true, sm.ClosedMs, sm.EndPos
				sh.endSeq = st.endSeq(sh, sm.EndPos)
			}
			sh.expired.Store(sm.Expired)
		}
		st.reindexOpen()
		s.streams[st.name] = st
	}
	return nil
}
