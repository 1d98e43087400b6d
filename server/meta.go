package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server/store"
)

// Stream metadata changes follow one path: prepare the new state (a copy of
// the settings, or new shards nobody can reach yet), persist the whole
// document (store.SaveMeta: temporary file, fsync, rename, directory fsync,
// checksum), and only then publish it. A failed save answers a retryable
// error and leaves memory exactly as it was.
//
// Server.metaMu is the sequencer: one change at a time, so each document
// builds on the last one saved. It is the only lock held across the save:
// the server-wide s.mu is taken only for instants, and a stream's own lock
// only by changes of its shard layout (so no put lands in a shard the disk
// does not know yet). Puts and reads of other streams never wait for a
// metadata fsync.
//
// Stream consumers are part of the same document (each stream's list) and
// change on the same path: RegisterStreamConsumer, DeregisterStreamConsumer
// and the ends of their CreateDelay hold metaMu, save, then publish in the
// consumer registry.
//
// Lock order: metaMu, s.mu, st.mu, shard appendMu. Only the metaMu holder
// ever holds two streams' locks at once. s.consumers.mu is taken alone or
// innermost (persist takes it under a stream's lock), never around another.

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
	// Consumers are absent from documents written before they were kept.
	Consumers []consumerMeta `json:"consumers,omitempty"`
}

// consumerMeta is one registered stream consumer. Its ARN derives from the
// stream's ARN, its name and its creation time.
type consumerMeta struct {
	Name    string `json:"name"`
	Created int64  `json:"created"` // epoch ms
	Status  string `json:"status"`
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

// metaLocked describes st with settings set. Caller holds st.mu (read or write).
func (st *stream) metaLocked(set streamSettings) streamMeta {
	m := streamMeta{
		Name: st.name, Created: st.created, Status: set.status, Mode: set.mode,
		RetentionHours: set.retentionHours, MaxRecordSizeKiB: set.maxRecordSizeKiB,
		Tags: set.tags, Encryption: set.encryption, KeyID: set.keyID, Monitoring: set.monitoring,
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
	return m
}

// streamList returns the streams sorted by name. Caller holds metaMu, so the
// set cannot change until it releases it.
func (s *Server) streamList() []*stream {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// persist saves the document of streams, taking the description of those in
// prepared from there (their locks may be held by the caller) and of the
// others from memory. Caller holds metaMu and no s.mu.
func (s *Server) persist(streams []*stream, prepared map[*stream]streamMeta) error {
	return s.persistWith(streams, prepared, nil)
}

// persistWith is persist with the consumers of the streams in consumers
// taken from there; those of the other streams come from the registry.
func (s *Server) persistWith(streams []*stream, prepared map[*stream]streamMeta, consumers map[*stream][]consumerMeta) error {
	doc := metaDoc{IteratorKey: s.iterKey, Streams: make([]streamMeta, 0, len(streams))}
	for _, st := range streams {
		m, ok := prepared[st]
		if !ok {
			st.mu.RLock()
			m = st.metaLocked(st.streamSettings)
			st.mu.RUnlock()
		}
		if cm, ok := consumers[st]; ok {
			m.Consumers = cm
		} else {
			m.Consumers = s.consumerMetas(st)
		}
		doc.Streams = append(doc.Streams, m)
	}
	b, err := json.Marshal(doc)
	if err == nil {
		err = s.store.SaveMeta(b)
	}
	if err != nil {
		return s.storeFailure("saving metadata", err)
	}
	return nil
}

// storeFailure logs a store error in full at ERROR and returns what the
// client gets (clientError).
func (s *Server) storeFailure(what string, err error) error {
	var ke *kds.Error
	if errors.As(err, &ke) {
		return ke
	}
	s.log.Error("internal failure", "op", what, "err", err)
	return clientError(err)
}

// clientError is the retryable AWS error a store failure answers, without
// local paths. Running out of space or file handles is ServiceUnavailable
// (503: the condition is temporary and SDKs retry it with backoff, as they
// do AWS's own); anything else is InternalFailure (500, also retried).
func clientError(err error) *kds.Error {
	switch {
	case store.IsNoSpace(err):
		return kds.Errorf(kds.ErrCodeServiceUnavailable, "The service is out of storage space; retry later.")
	case store.IsOutOfFiles(err):
		return kds.Errorf(kds.ErrCodeServiceUnavailable, "The service is out of file handles; retry later.")
	case errors.Is(err, store.ErrClosed):
		return kds.Errorf(kds.ErrCodeServiceUnavailable, "The service is shutting down; retry later.")
	}
	return kds.Errorf(kds.ErrCodeInternalFailure, "%s", msgInternalFailure)
}

// msgInternalFailure is the message of a failure whose detail stays in the
// log; writeError adds the request id to it, to find that detail.
const msgInternalFailure = "Internal service failure."

// invoke runs an operation, turning a panic into InternalFailure (logged at
// ERROR with its stack). Every lock on the way is released by defer, so the
// server keeps serving.
func (s *Server) invoke(fn handler, c *call) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving request", "op", c.op, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, kds.Errorf(kds.ErrCodeInternalFailure, "Internal service failure.")
		}
	}()
	return fn(s, c)
}

// updateStream applies change to a copy of an ACTIVE stream's settings,
// saves the metadata with it and then publishes it. With
// Options.CreateDelay the stream is UPDATING for that long, as on AWS.
// change may refuse with an error (nothing changes).
func (s *Server) updateStream(ref streamRef, change func(st *stream, set *streamSettings) error) (any, error) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	st, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	set := st.streamSettings.clone()
	st.mu.RUnlock()
	if set.status != statusActive {
		return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s not ACTIVE, instead in state %s", st.name, s.opts.Account, set.status)
	}
	if err := change(st, &set); err != nil {
		return nil, err
	}
	if s.opts.CreateDelay > 0 {
		set.status = statusUpdating
	}
	if err := s.saveSettings(st, set); err != nil {
		return nil, err
	}
	if s.opts.CreateDelay > 0 {
		s.after(s.opts.CreateDelay, func() { s.setStatus(st, statusUpdating, statusActive) })
	}
	return empty{}, nil
}

// updateSettings applies change to a copy of st's settings (in any
// status), saves and publishes it.
func (s *Server) updateSettings(st *stream, change func(set *streamSettings) error) (any, error) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	if s.lookupExact(st) == nil {
		return nil, s.notFound(st.name)
	}
	st.mu.RLock()
	set := st.streamSettings.clone()
	st.mu.RUnlock()
	if err := change(&set); err != nil {
		return nil, err
	}
	if err := s.saveSettings(st, set); err != nil {
		return nil, err
	}
	return empty{}, nil
}

// saveSettings persists st with set and publishes set. Caller holds metaMu.
func (s *Server) saveSettings(st *stream, set streamSettings) error {
	st.mu.RLock()
	m := st.metaLocked(set)
	st.mu.RUnlock()
	if err := s.persist(s.streamList(), map[*stream]streamMeta{st: m}); err != nil {
		return err
	}
	st.mu.Lock()
	st.streamSettings = set
	st.mu.Unlock()
	return nil
}

// setStatus moves st from one status to another if it is still in from
// (the end of a CreateDelay). A failed save leaves the status as it was, and
// is retried after another CreateDelay.
func (s *Server) setStatus(st *stream, from, to string) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	st.mu.RLock()
	set := st.streamSettings.clone()
	st.mu.RUnlock()
	if set.status != from || s.lookupExact(st) == nil {
		return
	}
	set.status = to
	if err := s.saveSettings(st, set); err != nil {
		s.log.Error("saving metadata; retrying", "stream", st.name, "status", to, "err", err)
		s.after(s.opts.CreateDelay, func() { s.setStatus(st, from, to) })
	}
}

// lookupExact returns st if it is still the stream of its name.
func (s *Server) lookupExact(st *stream) *stream {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.streams[st.name] == st {
		return st
	}
	return nil
}

// loadMeta restores streams from the store's metadata document. It writes
// nothing, so a server starts (and serves reads) on a full disk; it reports
// whether a document existed. Every shard's log must exist: a missing shard
// directory next to metadata that names it fails the start.
func (s *Server) loadMeta() (bool, error) {
	b, err := s.store.LoadMeta()
	if err != nil || len(b) == 0 {
		return false, err
	}
	var doc metaDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return true, fmt.Errorf("decoding the metadata document: %w", err)
	}
	if len(doc.IteratorKey) > 0 {
		s.iterKey = doc.IteratorKey
	}
	open := s.store.Log
	if o, ok := s.store.(interface {
		OpenLog(store.LogID) (store.Log, error)
	}); ok {
		open = o.OpenLog
	}
	now := s.now()
	var errs []error
	for _, m := range doc.Streams {
		st := &stream{
			name: m.Name, created: m.Created, arn: kds.StreamARN(s.opts.Region, s.opts.Account, m.Name),
			streamSettings: streamSettings{
				status: m.Status, mode: m.Mode, retentionHours: m.RetentionHours, maxRecordSizeKiB: m.MaxRecordSizeKiB,
				tags: m.Tags, encryption: m.Encryption, keyID: m.KeyID, monitoring: m.Monitoring,
			},
		}
		if st.tags == nil {
			st.tags = map[string]string{}
		}
		if st.status == statusCreating || st.status == statusUpdating {
			st.status = statusActive
		}
		if st.status == statusDeleting {
			// Deleted before the crash: finish, but keep the document as it
			// is (the next metadata save drops the stream).
			if err := s.store.DropStream(st.name, st.created); err != nil {
				s.log.Error("dropping a deleted stream", "stream", st.name, "err", err)
			}
			continue
		}
		if err := s.loadShards(st, m, now, open); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", m.Name, err))
			continue
		}
		s.streams[st.name] = st
		s.restoreConsumers(st, m.Consumers)
	}
	return true, errors.Join(errs...)
}

// loadShards restores the shards of st from m. A closed shard's end is
// reconciled with its log: stores written by earlier versions may record
// positions that were assigned but never committed.
func (s *Server) loadShards(st *stream, m streamMeta, now time.Time, open func(store.LogID) (store.Log, error)) error {
	for _, sm := range m.Shards {
		start, err1 := kds.ParseHashKey(sm.Start)
		end, err2 := kds.ParseHashKey(sm.End)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("shard %s: %w", kds.ShardID(len(st.shards)), err)
		}
		sh, err := s.attachShard(st, kds.HashKeyRange{Start: start, End: end}, sm.Parent, sm.AdjacentParent, now, open)
		if err != nil {
			return err
		}
		sh.createdMs = sm.Created
		if sm.Closed {
			endPos := sm.EndPos
			if endPos > sh.nextPos {
				s.log.Warn("closed shard ends past its last committed record; using the record", "stream", st.name, "shard_id", sh.id,
					"recorded_end", endPos, "committed_end", sh.nextPos)
				endPos = sh.nextPos
			}
			sh.closed, sh.closedMs, sh.endPos = true, sm.ClosedMs, endPos
			sh.endSeq = st.endSeq(sh, endPos)
		}
		sh.expired.Store(sm.Expired)
	}
	st.reindexOpen()
	if len(st.open) == 0 && len(st.shards) > 0 {
		return errors.New("the metadata lists no open shard")
	}
	return nil
}
