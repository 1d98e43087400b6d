package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ksp-project/ksp/internal/cborwire"
	"github.com/ksp-project/ksp/internal/jsonwire"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server/store"
)

type getRecordsInput struct {
	ShardIterator *string  `json:"ShardIterator"`
	Limit         *integer `json:"Limit,omitempty"`
	StreamARN     *string  `json:"StreamARN,omitempty"`
}

func (r *getRecordsInput) validate(v *validator) {
	if v.notNull("shardIterator", r.ShardIterator != nil) {
		v.length("shardIterator", *r.ShardIterator, 1, 512)
	}
	if r.Limit != nil {
		v.intRange("limit", int64(*r.Limit), 1, kds.MaxGetRecordsLimit)
	}
	v.streamARN("streamARN", r.StreamARN)
}

type childShard struct {
	ShardId      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange hashKeyRange `json:"HashKeyRange"`
}

type getRecordsOutput struct {
	recordEncoder
	next        *string
	behind      int64
	childShards []childShard
	buf         *store.ReadBuffer // records live here; nil: not pooled
}

// recordEncoder encodes one shard's records as GetRecords answers and
// SubscribeToShard events carry them, in JSON and CBOR.
type recordEncoder struct {
	sh      *shard
	records []store.Record
	seq     seqCursor    // formats the records' sequence numbers
	arrival arrivalCache // formats their arrival times
}

// readBuffers hold what GetRecords reads records into: megabytes per call
// that would otherwise be garbage after each answer. A few are kept (a
// handful of megabytes at most), as many as concurrent large reads need.
var readBuffers = newKeepPool(4, func() *store.ReadBuffer { return new(store.ReadBuffer) })

// release gives the read buffer back once the answer is written; the
// records may not be used afterwards. Buffers grown past maxKeptRead (pages
// of large records) are left to the collector, so what the pool keeps stays
// a few megabytes.
func (o *getRecordsOutput) release() {
	if o.buf != nil {
		putReadBuffer(o.buf)
		o.buf, o.records = nil, nil
	}
}

// putReadBuffer gives rb back to the pool unless it grew past maxKeptRead.
func putReadBuffer(rb *store.ReadBuffer) {
	if cap(rb.Bytes) <= maxKeptRead {
		readBuffers.put(rb)
	}
}

const maxKeptRead = 2 << 20

// writeJSON writes the answer in pieces of about chunkSize through a pooled
// buffer, after a Content-Length of its exact size: a page (up to 10 MiB of
// data, over 13 MiB of JSON) never exists whole in memory, the pieces stay
// in cache between encoding and the socket, and a client sizes its read
// buffer once.
func (o *getRecordsOutput) writeJSON(w http.ResponseWriter) error {
	return o.writePieces(w, o.appendHead, o.recordsLen, o.appendRecord, "]}")
}

// writeCBOR is writeJSON in CBOR.
func (o *getRecordsOutput) writeCBOR(w http.ResponseWriter) error {
	return o.writePieces(w, o.appendHeadCBOR, o.recordsLenCBOR, o.appendRecordCBOR, "")
}

// writePieces writes head, every record and tail in pieces of about
// chunkSize, after a Content-Length of their length (recordsLen: that of
// all records).
func (o *getRecordsOutput) writePieces(w http.ResponseWriter, head func([]byte) []byte, recordsLen func() int, record func([]byte, int) []byte, tail string) error {
	bp := chunkBuffers.Get().(*[]byte)
	b := head((*bp)[:0])
	defer func() {
		if cap(b) <= 2*chunkSize { // a large record's piece is left to the collector
			*bp = b[:0]
			chunkBuffers.Put(bp)
		}
	}()
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+recordsLen()+len(tail)))
	for i := range o.records {
		b = record(b, i)
		if len(b) >= chunkSize {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, tail...)
	_, err := w.Write(b)
	return err
}

// chunkBuffers hold the pieces GetRecords answers are written in. A Write
// keeps nothing of what it is given (net/http copies to the socket, x/net's
// HTTP/2 server into its frames before Write returns), so a buffer goes back
// once the answer is written.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize+chunkSize/4); return &b }}

const chunkSize = 60 << 10

// recordLenFixed is the length of a record's JSON without its values.
const recordLenFixed = len(`{"ApproximateArrivalTimestamp":`) + len(`,"Data":`) + len(`,"PartitionKey":`) + len(`,"SequenceNumber":""}`) + seqLen

// recordsLen is the exact length of what appendRecord appends for every
// record, the commas between them included.
func (o *recordEncoder) recordsLen() int {
	n := max(0, len(o.records)-1)
	for i := range o.records {
		r := &o.records[i]
		n += recordLenFixed + o.arrival.len(r.ArrivalMilli) + jsonwire.BlobLen(r.Data) + jsonwire.StringLen(r.PartitionKey)
	}
	return n
}

// appendHead appends everything before the first record.
func (o *getRecordsOutput) appendHead(b []byte) []byte {
	b = append(b, '{')
	if o.childShards != nil {
		b = appendChildShardsJSON(b, o.childShards)
		b = append(b, ',')
	}
	b = append(b, `"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, o.behind, 10)
	if o.next != nil {
		b = append(b, `,"NextShardIterator":"`...)
		b = append(b, *o.next...)
		b = append(b, '"')
	}
	return append(b, `,"Records":[`...)
}

// appendChildShardsJSON appends the ChildShards member.
func appendChildShardsJSON(b []byte, children []childShard) []byte {
	b = append(b, `"ChildShards":[`...)
	for i, cs := range children {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"HashKeyRange":{"EndingHashKey":"`...)
		b = append(b, cs.HashKeyRange.EndingHashKey...)
		b = append(b, `","StartingHashKey":"`...)
		b = append(b, cs.HashKeyRange.StartingHashKey...)
		b = append(b, `"},"ParentShards":[`...)
		for j, p := range cs.ParentShards {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, p)
		}
		b = append(b, `],"ShardId":"`...)
		b = append(b, cs.ShardId...)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

// appendRecord appends record i (with its leading comma).
func (o *recordEncoder) appendRecord(b []byte, i int) []byte {
	r := &o.records[i]
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"ApproximateArrivalTimestamp":`...)
	b = o.arrival.append(b, r.ArrivalMilli)
	b = append(b, `,"Data":`...)
	b = appendJSONBlob(b, r.Data)
	b = append(b, `,"PartitionKey":`...)
	b = appendJSONString(b, r.PartitionKey)
	b = append(b, `,"SequenceNumber":"`...)
	b = o.seqCursor().append(b, r.Position)
	return append(b, `"}`...)
}

// seqCursor is the cursor formatting the records' sequence numbers.
func (o *recordEncoder) seqCursor() *seqCursor {
	if o.seq.p == nil {
		o.seq = newSeqCursor(&o.sh.seq)
	}
	return &o.seq
}

// arrivalCache formats arrival times, once for each run of records that
// arrived in the same millisecond (a put's records share one).
type arrivalCache struct {
	ms   int64
	n    int // of text holding ms formatted; 0 until the first
	text [24]byte
}

func (a *arrivalCache) append(b []byte, ms int64) []byte {
	return append(b, a.text[:a.len(ms)]...)
}

// len formats ms (when it is not the last one) and returns its length.
func (a *arrivalCache) len(ms int64) int {
	if a.n == 0 || ms != a.ms {
		a.ms, a.n = ms, len(appendEpochSeconds(a.text[:0], ms))
	}
	return a.n
}

// appendHeadCBOR appends everything before the first record, in CBOR: the
// fields of the JSON answer, ChildShards omitted when empty.
func (o *getRecordsOutput) appendHeadCBOR(b []byte) []byte {
	fields := uint64(2)
	if len(o.childShards) > 0 {
		fields++
	}
	if o.next != nil {
		fields++
	}
	b = cborwire.AppendHead(b, cborwire.Map, fields)
	if len(o.childShards) > 0 {
		b = appendChildShardsCBOR(b, o.childShards)
	}
	b = cborwire.AppendText(b, "MillisBehindLatest")
	b = cborwire.AppendInt(b, o.behind)
	if o.next != nil {
		b = cborwire.AppendText(b, "NextShardIterator")
		b = cborwire.AppendText(b, *o.next)
	}
	b = cborwire.AppendText(b, "Records")
	return cborwire.AppendHead(b, cborwire.Array, uint64(len(o.records)))
}

// appendChildShardsCBOR appends the ChildShards member in CBOR.
func appendChildShardsCBOR(b []byte, children []childShard) []byte {
	b = cborwire.AppendText(b, "ChildShards")
	b = cborwire.AppendHead(b, cborwire.Array, uint64(len(children)))
	for _, cs := range children {
		b = cborwire.AppendHead(b, cborwire.Map, 3)
		b = cborwire.AppendText(b, "ShardId")
		b = cborwire.AppendText(b, cs.ShardId)
		b = cborwire.AppendText(b, "ParentShards")
		b = cborwire.AppendHead(b, cborwire.Array, uint64(len(cs.ParentShards)))
		for _, p := range cs.ParentShards {
			b = cborwire.AppendText(b, p)
		}
		b = cborwire.AppendText(b, "HashKeyRange")
		b = cborwire.AppendHead(b, cborwire.Map, 2)
		b = cborwire.AppendText(b, "StartingHashKey")
		b = cborwire.AppendText(b, cs.HashKeyRange.StartingHashKey)
		b = cborwire.AppendText(b, "EndingHashKey")
		b = cborwire.AppendText(b, cs.HashKeyRange.EndingHashKey)
	}
	return b
}

// A record's map head and member names in CBOR.
var (
	cborRecordHead = cborwire.AppendHead(nil, cborwire.Map, 4)
	cborArrivalKey = cborwire.AppendText(nil, "ApproximateArrivalTimestamp")
	cborDataKey    = cborwire.AppendText(nil, "Data")
	cborKeyKey     = cborwire.AppendText(nil, "PartitionKey")
	cborSeqKey     = cborwire.AppendText(nil, "SequenceNumber")
)

// cborRecordLenFixed is the length of a record's CBOR without its values
// (the timestamp's tag and the sequence number included).
var cborRecordLenFixed = len(cborRecordHead) + len(cborArrivalKey) + 1 + len(cborDataKey) + len(cborKeyKey) + len(cborSeqKey) + cborwire.HeadLen(seqLen) + seqLen

// appendRecordCBOR appends record i. Its arrival time is epoch milliseconds
// under tag 1, as the Java SDK writes and reads timestamps.
func (o *recordEncoder) appendRecordCBOR(b []byte, i int) []byte {
	r := &o.records[i]
	b = append(b, cborRecordHead...)
	b = append(b, cborArrivalKey...)
	b = cborwire.AppendInt(append(b, cborwire.Tag|1), r.ArrivalMilli)
	b = append(b, cborDataKey...)
	b = cborwire.AppendBytes(b, r.Data)
	b = append(b, cborKeyKey...)
	b = cborwire.AppendText(b, r.PartitionKey)
	b = append(b, cborSeqKey...)
	b = cborwire.AppendHead(b, cborwire.Text, seqLen)
	return o.seqCursor().append(b, r.Position)
}

// recordsLenCBOR is the exact length of what appendRecordCBOR appends for
// every record.
func (o *recordEncoder) recordsLenCBOR() int {
	n := 0
	for i := range o.records {
		r := &o.records[i]
		n += cborRecordLenFixed + cborwire.IntLen(r.ArrivalMilli) + cborwire.BytesLen(r.Data) + cborwire.TextLen(r.PartitionKey)
	}
	return n
}

func getRecords(s *Server, c *call) (any, error) {
	req, err := decodeRequest[getRecordsInput](c)
	if err != nil {
		return nil, err
	}
	it, err := s.decodeIterator(*req.ShardIterator)
	if err != nil {
		return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "Invalid ShardIterator.")
	}
	nowMs := c.now.UnixMilli()
	if age := nowMs - it.issued; age > kds.IteratorLifetime.Milliseconds() {
		return nil, kds.Errorf(kds.ErrCodeExpiredIterator,
			"Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			amzTime(it.issued), amzTime(nowMs), kds.IteratorLifetime.Milliseconds())
	}
	ref := streamRef{StreamName: &it.stream}
	if req.StreamARN != nil {
		ref.StreamARN = req.StreamARN
	}
	st, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	// closed and endPos are read under the stream's lock: a reshard sets
	// them under it before saving the new layout and, when the save fails,
	// reopens the shard before it lets go, so a reader never sees a shard
	// closed that is not (and one seen closed has every record up to endPos
	// committed: a reshard commits first).
	st.mu.RLock()
	var sh *shard
	var closed bool
	var endPos uint64
	if it.shardIdx < len(st.shards) {
		sh = st.shards[it.shardIdx]
		closed, endPos = sh.closed, sh.endPos
	}
	st.mu.RUnlock()
	if st.created != it.created || sh == nil || sh.expired.Load() {
		return nil, kds.Errorf(kds.ErrCodeResourceNotFound, "Shard %s in stream %s under account %s does not exist", kds.ShardID(it.shardIdx), it.stream, s.opts.Account)
	}
	throttled := kds.Errorf(kds.ErrCodeProvisionedThroughput, "Rate exceeded for shard %s in stream %s under account %s.", sh.id, st.name, s.opts.Account)
	if f := s.faults.Load(); len(f.Throttle) > 0 && f.throttled(st.name, sh.id) {
		st.countReadThrottle(sh)
		return nil, throttled
	}
	if !s.opts.DisableLimits && !sh.limiter.takeReadCall(c.now) {
		st.countReadThrottle(sh)
		return nil, throttled
	}
	limit := kds.MaxGetRecordsLimit
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	var rb *store.ReadBuffer
	var recs []store.Record
	if br, ok := sh.log.(store.BufferedReader); ok {
		rb = readBuffers.get()
		recs, err = br.ReadInto(rb, it.position, limit, kds.MaxGetRecordsBytes)
	} else {
		recs, err = sh.log.Read(it.position, limit, kds.MaxGetRecordsBytes)
	}
	if err != nil {
		if rb != nil {
			putReadBuffer(rb) // a failed read may have grown it for a large read
		}
		return nil, err
	}
	_, visible, lastArrival := sh.log.Bounds()
	next := it.position
	bytes := 0
	if n := len(recs); n > 0 {
		next = recs[n-1].Position + 1
		for i := range recs {
			bytes += recs[i].Size()
		}
	}
	if !s.opts.DisableLimits {
		sh.limiter.chargeRead(bytes)
	}
	st.countRead(sh, recs, nowMs, false)
	out := &getRecordsOutput{recordEncoder: recordEncoder{sh: sh, records: recs}, buf: rb}
	if n := len(recs); n > 0 && next < visible {
		out.behind = max(0, lastArrival-recs[n-1].ArrivalMilli)
	}
	if closed && next >= endPos {
		out.childShards = st.childShards(sh)
	} else {
		out.next = ptr(s.encodeIterator(iterator{stream: st.name, created: st.created, issued: nowMs, shardIdx: sh.idx, position: next}))
	}
	return out, nil
}

// childShards lists the shards that replaced sh.
func (st *stream) childShards(sh *shard) []childShard {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := []childShard{}
	for _, c := range st.shards {
		if c.parent == sh.id || c.adjacentParent == sh.id {
			parents := []string{c.parent}
			if c.adjacentParent != "" {
				parents = append(parents, c.adjacentParent)
			}
			out = append(out, childShard{ShardId: c.id, ParentShards: parents, HashKeyRange: hashKeyRange{c.startKey, c.endKey}})
		}
	}
	return out
}

func amzTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("Mon Jan 02 15:04:05 UTC 2006")
}
