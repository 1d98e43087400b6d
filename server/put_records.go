package server

import (
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/ksp-project/ksp/internal/cborwire"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server/store"
)

// putRecordsEntry is one record of a put. Decoded by a fast path for a
// store that copies records out, its data and keys are in pooled memory (the
// put's slab, the request body): nothing may keep them past the call
// (bytes.Clone, strings.Clone them).
type putRecordsEntry struct {
	Data            blob    `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey,omitempty"`
}

type putRecordsInput struct {
	streamRef
	Records []putRecordsEntry `json:"Records"`
}

func (r *putRecordsInput) validate(v *validator) {
	if v.notNull("records", r.Records != nil) {
		if n := len(r.Records); n < 1 || n > kds.MaxRecordsPerPutRecords {
			v.fail("[...]", false, "records", "have length "+map[bool]string{true: "greater than or equal to 1", false: "less than or equal to 500"}[n < 1])
		}
		for i := range r.Records {
			if !r.Records[i].valid() {
				r.Records[i].validate(v, "records."+strconv.Itoa(i+1)+".member.")
			}
		}
	}
	r.streamRef.validate(v)
}

// valid is the quick check that an entry has nothing validate would report.
func (e *putRecordsEntry) valid() bool {
	if e.PartitionKey == nil || e.Data == nil || len(e.Data) > kds.MaxMaxRecordSizeKiB<<10 {
		return false
	}
	if n := len(*e.PartitionKey); n == 0 || (n > kds.MaxPartitionKeyLength && utf16Len(*e.PartitionKey) > kds.MaxPartitionKeyLength) {
		return false
	}
	return e.ExplicitHashKey == nil || isDigits(*e.ExplicitHashKey)
}

func (e *putRecordsEntry) validate(v *validator, prefix string) {
	if v.notNull(prefix+"partitionKey", e.PartitionKey != nil) {
		v.length(prefix+"partitionKey", *e.PartitionKey, 1, kds.MaxPartitionKeyLength)
	}
	if v.notNull(prefix+"data", e.Data != nil) {
		e.checkDataLength(v, prefix, kds.MaxMaxRecordSizeKiB<<10)
	}
	v.hashKey(prefix+"explicitHashKey", e.ExplicitHashKey)
}

// checkDataLength reports data longer than limit the way AWS's validation
// words it (Java's view of the blob included). The member allows 10 MiB;
// put applies the stream's MaxRecordSize the same way.
func (e *putRecordsEntry) checkDataLength(v *validator, prefix string, limit int) {
	if len(e.Data) > limit {
		n := strconv.Itoa(len(e.Data))
		v.fail("java.nio.HeapByteBuffer[pos=0 lim="+n+" cap="+n+"]", true, prefix+"data", "have length less than or equal to "+strconv.Itoa(limit))
	}
}

// size is what a record counts against the record, request and shard
// limits: data plus partition key bytes.
func (e *putRecordsEntry) size() int { return len(e.Data) + len(*e.PartitionKey) }

// putResult is the outcome of one entry.
type putResult struct {
	shard *shard
	pos   uint64
	err   *kds.Error // throttled or failed entry
}

type putRecordsOutput struct {
	encryption string
	failed     int
	results    []putResult
	sc         *putScratch // results live here
}

// release gives the put's memory back once the answer is written.
func (o *putRecordsOutput) release() {
	o.sc.release()
	o.sc, o.results = nil, nil
}

// putScratch is the memory of one put: the decoded request (JSON's data in
// one slab), the routing, the results and the records handed to the store.
// A put takes one from putScratches and gives it back once its answer is
// written. By then nothing refers to it, nor to the request body: the answer
// is written, and the stores the server knows copy records out during
// Append (pooledData).
type putScratch struct {
	req     putRecordsInput
	entries []putRecordsEntry
	slab    []byte // entries' data, when pooledData
	keys    []string
	spans   []keySpans
	results []putResult
	groups  []putGroup
	group   []int32
	idx     []int
	recs    []store.Record
}

var putScratches = sync.Pool{New: func() any { return new(putScratch) }}

// maxKeptSlab bounds the data slab a pooled scratch keeps: a default 5 MiB
// request's data fits, a 10 MiB record's is left to the collector.
const maxKeptSlab = 4 << 20

func getPutScratch() *putScratch { return putScratches.Get().(*putScratch) }

// release gives sc back; nothing may use it or what it holds afterwards.
func (sc *putScratch) release() {
	if sc == nil {
		return
	}
	if cap(sc.slab) > maxKeptSlab {
		sc.slab = nil
	}
	// Keys and records point into request bodies, which are pooled apart.
	clear(sc.keys[:cap(sc.keys)])
	clear(sc.recs[:cap(sc.recs)])
	sc.req = putRecordsInput{}
	putScratches.Put(sc)
}

// pooledData reports whether a put may decode data into pooled memory: the
// store copies records out on Append. A Store of the user's may keep what
// it is given, so it gets data of its own.
func (s *Server) pooledData() bool {
	switch s.store.(type) {
	case *store.Memory, *store.Disk:
		return true
	}
	return false
}

func (o *putRecordsOutput) appendJSON(b []byte) []byte {
	b = slices.Grow(b, 64+len(o.results)*112)
	b = append(b, `{"EncryptionType":`...)
	b = appendJSONString(b, o.encryption)
	b = append(b, `,"FailedRecordCount":`...)
	b = strconv.AppendInt(b, int64(o.failed), 10)
	b = append(b, `,"Records":[`...)
	var curs shardCursors
	for i, r := range o.results {
		if i > 0 {
			b = append(b, ',')
		}
		if r.err != nil {
			b = append(b, `{"ErrorCode":`...)
			b = appendJSONString(b, r.err.Code)
			b = append(b, `,"ErrorMessage":`...)
			b = appendJSONString(b, r.err.Message)
			b = append(b, '}')
			continue
		}
		b = append(b, `{"SequenceNumber":"`...)
		b = curs.of(r.shard).append(b, r.pos)
		b = append(b, `","ShardId":"`...)
		b = append(b, r.shard.id...)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// appendCBOR is appendJSON in CBOR, entries' empty members left out.
func (o *putRecordsOutput) appendCBOR(b []byte) []byte {
	b = slices.Grow(b, 64+len(o.results)*112)
	b = cborwire.AppendHead(b, cborwire.Map, 3)
	b = cborwire.AppendText(b, "EncryptionType")
	b = cborwire.AppendText(b, o.encryption)
	b = cborwire.AppendText(b, "FailedRecordCount")
	b = cborwire.AppendInt(b, int64(o.failed))
	b = cborwire.AppendText(b, "Records")
	b = cborwire.AppendHead(b, cborwire.Array, uint64(len(o.results)))
	var curs shardCursors
	for _, r := range o.results {
		if r.err != nil {
			b = appendCBORMembers(b, "ErrorCode", r.err.Code, "ErrorMessage", r.err.Message)
			continue
		}
		b = cborwire.AppendHead(b, cborwire.Map, 2)
		b = cborwire.AppendText(b, "SequenceNumber")
		b = cborwire.AppendHead(b, cborwire.Text, seqLen)
		b = curs.of(r.shard).append(b, r.pos)
		b = cborwire.AppendText(b, "ShardId")
		b = cborwire.AppendText(b, r.shard.id)
	}
	return b
}

// appendCBORMembers appends a map of two string members, leaving out the
// empty ones (omitempty).
func appendCBORMembers(b []byte, k1, v1, k2, v2 string) []byte {
	b = cborwire.AppendHead(b, cborwire.Map, uint64(min(len(v1), 1)+min(len(v2), 1)))
	if v1 != "" {
		b = cborwire.AppendText(cborwire.AppendText(b, k1), v1)
	}
	if v2 != "" {
		b = cborwire.AppendText(cborwire.AppendText(b, k2), v2)
	}
	return b
}

// shardCursors format the sequence numbers of a put's entries: a shard's
// entries have consecutive positions, so a cursor per shard (a request
// names a few).
type shardCursors []seqCursor

func (cs *shardCursors) of(sh *shard) *seqCursor {
	for j := range *cs {
		if (*cs)[j].p == &sh.seq {
			return &(*cs)[j]
		}
	}
	if len(*cs) == 8 {
		*cs = (*cs)[:0] // many shards: start over rather than search long
	}
	*cs = append(*cs, newSeqCursor(&sh.seq))
	return &(*cs)[len(*cs)-1]
}

func putRecords(s *Server, c *call) (_ any, err error) {
	sc := getPutScratch()
	defer func() {
		if err != nil {
			sc.release()
		}
	}()
	var req *putRecordsInput
	var ok bool
	if c.cbor {
		req, ok = sc.decodeCBOR(c.body, s.pooledData())
	} else {
		req, ok = sc.decodeJSON(c.body, s.pooledData())
	}
	if ok {
		err = validateRequest(req)
	} else {
		req, err = decodeRequest[putRecordsInput](c)
	}
	if err != nil {
		return nil, err
	}
	st, err := s.activeStream(req.streamRef)
	if err != nil {
		return nil, err
	}
	results, failed, err := s.put(c, st, req.Records, sc)
	if err != nil {
		return nil, err
	}
	return &putRecordsOutput{encryption: st.encryptionType(), failed: failed, results: results, sc: sc}, nil
}

type putRecordInput struct {
	streamRef
	putRecordsEntry
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering,omitempty"`
}

func (r *putRecordInput) validate(v *validator) {
	r.streamRef.validate(v)
	r.putRecordsEntry.validate(v, "")
	v.seqNum("sequenceNumberForOrdering", r.SequenceNumberForOrdering)
}

type putRecordOutput struct {
	ShardId        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
	EncryptionType string `json:"EncryptionType"`
}

func putRecord(s *Server, c *call) (any, error) {
	req, err := decodeRequest[putRecordInput](c)
	if err != nil {
		return nil, err
	}
	st, err := s.activeStream(req.streamRef)
	if err != nil {
		return nil, err
	}
	sc := getPutScratch()
	defer sc.release()
	results, _, err := s.put(c, st, []putRecordsEntry{req.putRecordsEntry}, sc)
	if err != nil {
		return nil, err
	}
	if r := results[0]; r.err != nil {
		return nil, r.err
	}
	return putRecordOutput{ShardId: results[0].shard.id, SequenceNumber: st.seq(results[0].shard, results[0].pos), EncryptionType: st.encryptionType()}, nil
}

// encryptionType is what puts report: NONE or KMS.
func (st *stream) encryptionType() string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.encryption == "" {
		return "NONE"
	}
	return string(st.encryption)
}

// put routes entries to shards, applies the write limits, appends each
// shard's entries in request order and commits before answering. Entries over
// a shard's limit fail alone with ProvisionedThroughputExceededException; an
// oversize record fails the whole request before anything is written or any
// limit is spent, and a request that fails as a whole gives its limits back.
// The results are in sc.
func (s *Server) put(c *call, st *stream, entries []putRecordsEntry, sc *putScratch) ([]putResult, int, error) {
	results, groups, err := s.appendEntries(c, st, entries, sc)
	if err != nil {
		return nil, 0, err
	}
	if len(groups) > 0 {
		if err := s.store.Commit(); err != nil {
			if err := s.uncommitted(groups, results, err); err != nil {
				s.refund(entries, groups)
				return nil, 0, err
			}
		}
		for _, g := range groups {
			g.sh.changed.notify() // wake subscriptions (SubscribeToShard)
		}
	}
	failed := st.countPut(c.op, entries, results, groups)
	return results, failed, nil
}

// appendEntries checks sizes, routes the entries to shards, applies the write
// limits and appends each shard's entries, under the stream's read lock (so
// no reshard closes a shard meanwhile), released by defer. Its memory is sc's.
func (s *Server) appendEntries(c *call, st *stream, entries []putRecordsEntry, sc *putScratch) ([]putResult, []putGroup, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	maxRecord := st.maxRecordSizeKiB << 10
	maxRequest := kds.MaxPutRecordsRequestSize
	if maxRecord > kds.DefaultMaxRecordSize {
		maxRequest = kds.MaxMaxRecordSizeKiB << 10
	}
	// Data alone over the stream's MaxRecordSize is a validation error, as on
	// AWS; data and key together over it, an invalid argument.
	var v validator
	for i := range entries {
		if len(entries[i].Data) <= maxRecord {
			continue // the common case: no field name built for nothing
		}
		prefix := ""
		if c.op == "PutRecords" {
			prefix = "records." + strconv.Itoa(i+1) + ".member."
		}
		entries[i].checkDataLength(&v, prefix, maxRecord)
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	total := 0
	for i := range entries {
		size := entries[i].size()
		if size > maxRecord {
			return nil, nil, kds.Errorf(kds.ErrCodeInvalidArgument,
				"Record size (data + partition key) of %d bytes for record %d exceeds the MaxRecordSize of %d bytes of stream %s under account %s.",
				size, i+1, maxRecord, st.name, s.opts.Account)
		}
		total += size
	}
	if total > maxRequest {
		return nil, nil, kds.Errorf(kds.ErrCodeInvalidArgument, "Records size of %d bytes exceeds the %d bytes request limit of stream %s under account %s.", total, maxRequest, st.name, s.opts.Account)
	}

	// Route every entry before any limit is taken, so that a request refused
	// as a whole spends none of a shard's budget.
	results := slices.Grow(sc.results[:0], len(entries))[:len(entries)]
	clear(results)
	sc.results = results
	for i := range entries {
		e := &entries[i]
		var h kds.HashKey
		if e.ExplicitHashKey != nil {
			var err error
			if h, err = kds.ParseHashKey(*e.ExplicitHashKey); err != nil {
				return nil, nil, kds.Errorf(kds.ErrCodeInvalidArgument, "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", *e.ExplicitHashKey)
			}
		} else {
			h = kds.HashPartitionKey(*e.PartitionKey)
		}
		if results[i].shard = st.shardFor(h); results[i].shard == nil {
			return nil, nil, kds.Errorf(kds.ErrCodeInternalFailure, "no open shard of stream %s holds hash key %s", st.name, h)
		}
	}
	faults := s.faults.Load()
	limits := !s.opts.DisableLimits
	// Apply the limits; admitted entries of one shard keep request order.
	// The groups' indexes share one slice, sized by a first pass.
	groups := sc.groups[:0]
	defer func() { sc.groups = groups[:0] }()
	group := slices.Grow(sc.group[:0], len(entries))[:len(entries)] // entry i's group, -1 when refused
	sc.group = group
	for i := range entries {
		sh := results[i].shard
		if (len(faults.Throttle) > 0 && faults.throttled(st.name, sh.id)) ||
			(limits && !sh.limiter.takeWrite(entries[i].size(), c.now)) {
			results[i].err = kds.Errorf(kds.ErrCodeProvisionedThroughput,
				"Rate exceeded for shard %s in stream %s under account %s.", sh.id, st.name, s.opts.Account)
			group[i] = -1
			continue
		}
		g := -1
		if i > 0 && group[i-1] >= 0 && groups[group[i-1]].sh == sh {
			g = int(group[i-1]) // runs of one shard are common
		} else {
			for j := range groups {
				if groups[j].sh == sh {
					g = j
					break
				}
			}
		}
		if g < 0 {
			groups = append(groups, putGroup{sh: sh})
			g = len(groups) - 1
		}
		group[i] = int32(g)
		groups[g].n++
	}
	idx := slices.Grow(sc.idx[:0], len(entries))
	sc.idx = idx
	largest := 0
	for g := range groups {
		groups[g].idx = idx[len(idx) : len(idx) : len(idx)+groups[g].n]
		idx = idx[:len(idx)+groups[g].n]
		largest = max(largest, groups[g].n)
	}
	for i, g := range group {
		if g >= 0 {
			groups[g].idx = append(groups[g].idx, i)
		}
	}
	now := c.now.UnixMilli()
	// The store records are reused (across shards and puts) only for the
	// stores that copy them out; a user's Store may keep the slice it is
	// given, so it gets a fresh one per Append.
	pooled := s.pooledData()
	var recs []store.Record
	if pooled {
		recs = slices.Grow(sc.recs[:0], largest)
		defer func() { sc.recs = recs[:0] }()
	}
	for _, g := range groups {
		if !pooled {
			recs = make([]store.Record, 0, g.n)
		}
		var first uint64
		var err error
		first, recs, err = g.sh.append(now, g.idx, entries, recs[:0])
		if err != nil {
			s.refund(entries, groups)
			return nil, nil, s.storeFailure("appending records", err)
		}
		for k, i := range g.idx {
			results[i].pos = first + uint64(k)
		}
	}
	return results, groups, nil
}

// refund gives back the write limits of the admitted entries of a request
// that failed as a whole after all.
func (s *Server) refund(entries []putRecordsEntry, groups []putGroup) {
	if s.opts.DisableLimits {
		return
	}
	for _, g := range groups {
		for _, i := range g.idx {
			g.sh.limiter.giveWrite(entries[i].size())
		}
	}
}

// append appends the entries idx of a put to the shard, arrival times never
// going backwards, and returns the first position (and recs, a buffer to
// reuse).
func (sh *shard) append(now int64, idx []int, entries []putRecordsEntry, recs []store.Record) (uint64, []store.Record, error) {
	sh.appendMu.Lock()
	defer sh.appendMu.Unlock()
	arrival := max(now, sh.lastArrival)
	for _, i := range idx {
		recs = append(recs, store.Record{ArrivalMilli: arrival, PartitionKey: *entries[i].PartitionKey, Data: entries[i].Data})
	}
	first, err := sh.log.Append(recs)
	if err == nil {
		sh.lastArrival, sh.nextPos = arrival, first+uint64(len(recs))
	}
	return first, recs, err
}

// putGroup is the entries of one put that go to one shard.
type putGroup struct {
	sh  *shard
	idx []int // into the request's entries
	n   int   // len(idx), counted before idx is filled
}

// uncommitted handles a failed commit. What a shard's log shows visible is
// committed (another shard's write may have failed, or a retry succeeded
// meanwhile), so only the entries of shards whose records are not visible
// fail, each with the store's retryable error; when none is visible the
// whole request fails with it.
func (s *Server) uncommitted(groups []putGroup, results []putResult, err error) error {
	failure := s.storeFailure("committing records", err)
	var ke *kds.Error
	if !errors.As(failure, &ke) {
		return failure
	}
	// PutRecords reports a record's failure as InternalFailure (the codes AWS
	// documents per record are that and ProvisionedThroughputExceeded).
	perRecord := kds.Errorf(kds.ErrCodeInternalFailure, "%s", ke.Message)
	committed := false
	for _, g := range groups {
		_, visible, _ := g.sh.log.Bounds()
		if last := results[g.idx[len(g.idx)-1]].pos; last < visible {
			committed = true
			continue
		}
		for _, i := range g.idx {
			results[i].err = perRecord
		}
	}
	if !committed {
		return failure
	}
	return nil
}
