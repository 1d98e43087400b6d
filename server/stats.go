package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server/store"
)

// Counters are counted per request (per shard group of a put), never per
// record, and read without any lock: a snapshot is a moment of each counter,
// not a consistent cut across them.

// Indices of the stream-level counters, in the order of
// metrics.StreamCounters.
const (
	stIncomingBytes = iota
	stIncomingRecords
	stPutRecordSuccess
	stPutRecordBytes
	stPutRecordsSuccess
	stPutRecordsBytes
	stPutRecordsTotal
	stPutRecordsSuccessful
	stPutRecordsFailed
	stPutRecordsThrottled
	stGetRecordsSuccess
	stGetRecordsRecords
	stGetRecordsBytes
	stWriteExceeded
	stReadExceeded
	stSubscribeSuccess
	stSubscribeRecords
	stSubscribeBytes
	numStreamStats
)

// Indices of the shard-level counters, in the order of metrics.ShardCounters.
const (
	shIncomingBytes = iota
	shIncomingRecords
	shOutgoingBytes
	shOutgoingRecords
	shWriteExceeded
	shReadExceeded
	numShardStats
)

type streamStats struct {
	c [numStreamStats]atomic.Int64
}

func (ss *streamStats) add(i int, n int64) { ss.c[i].Add(n) }

type shardStats struct {
	c       [numShardStats]atomic.Int64
	iterAge atomic.Int64 // ms, at the latest read
}

// countPut counts a put whose entries are answered by results (committed
// unless they carry an error) and returns how many failed.
func (st *stream) countPut(op string, entries []putRecordsEntry, results []putResult, groups []putGroup) (failedEntries int) {
	var bytes, records, throttled, failed int64
	for _, g := range groups {
		// A group's entries were admitted; one carries an error only when
		// its log's commit failed (uncommitted), and is not counted in.
		var b, n int64
		for _, i := range g.idx {
			if results[i].err == nil {
				b += int64(entries[i].size())
				n++
			}
		}
		g.sh.stats.c[shIncomingBytes].Add(b)
		g.sh.stats.c[shIncomingRecords].Add(n)
		bytes += b
		records += n
	}
	for i := range results {
		if e := results[i].err; e != nil {
			if e.Code == kds.ErrCodeProvisionedThroughput {
				throttled++
				results[i].shard.stats.c[shWriteExceeded].Add(1)
			} else {
				failed++
			}
		}
	}
	st.stats.add(stIncomingBytes, bytes)
	st.stats.add(stIncomingRecords, records)
	st.stats.add(stWriteExceeded, throttled)
	failedEntries = int(throttled + failed)
	if op == "PutRecord" {
		if records == 1 {
			st.stats.add(stPutRecordSuccess, 1)
			st.stats.add(stPutRecordBytes, bytes)
		}
		return failedEntries
	}
	st.stats.add(stPutRecordsSuccess, 1)
	st.stats.add(stPutRecordsBytes, bytes)
	st.stats.add(stPutRecordsTotal, int64(len(entries)))
	st.stats.add(stPutRecordsSuccessful, records)
	st.stats.add(stPutRecordsFailed, failed)
	st.stats.add(stPutRecordsThrottled, throttled)
	return failedEntries
}

// countRead counts records read from sh by GetRecords (fanOut false) or a
// subscription event, and sets the shard's iterator age: now minus the
// arrival of the last record read, 0 when nothing was read.
func (st *stream) countRead(sh *shard, recs []store.Record, nowMs int64, fanOut bool) {
	var bytes int64
	for i := range recs {
		bytes += int64(recs[i].Size())
	}
	n := int64(len(recs))
	sh.stats.c[shOutgoingBytes].Add(bytes)
	sh.stats.c[shOutgoingRecords].Add(n)
	age := int64(0)
	if n > 0 {
		age = max(0, nowMs-recs[n-1].ArrivalMilli)
	}
	sh.stats.iterAge.Store(age)
	if fanOut {
		st.stats.add(stSubscribeRecords, n)
		st.stats.add(stSubscribeBytes, bytes)
		return
	}
	st.stats.add(stGetRecordsSuccess, 1)
	st.stats.add(stGetRecordsRecords, n)
	st.stats.add(stGetRecordsBytes, bytes)
}

// countReadThrottle counts a GetRecords call refused for sh's read limit.
func (st *stream) countReadThrottle(sh *shard) {
	sh.stats.c[shReadExceeded].Add(1)
	st.stats.add(stReadExceeded, 1)
}

// Metrics returns the server's counters now (see package metrics).
func (s *Server) Metrics() *metrics.Snapshot {
	s.mu.RLock()
	streams := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.RUnlock()
	out := &metrics.Snapshot{Time: time.Now(), Streams: make([]metrics.StreamMetrics, 0, len(streams))}
	for _, st := range streams {
		out.Streams = append(out.Streams, st.metrics())
	}
	slices.SortFunc(out.Streams, func(a, b metrics.StreamMetrics) int { return strings.Compare(a.StreamName, b.StreamName) })
	return out
}

func (st *stream) metrics() metrics.StreamMetrics {
	// A shard's closed flag is read under the stream's lock, as GetRecords
	// reads it (a reshard sets it under that lock).
	st.mu.RLock()
	shards := append([]*shard(nil), st.shards...)
	closed := make([]bool, len(shards))
	for i, sh := range shards {
		closed[i] = sh.closed
	}
	mode := st.mode
	st.mu.RUnlock()
	sm := metrics.StreamMetrics{
		StreamName: st.name, StreamARN: st.arn, Mode: string(mode),
		Counters: make(map[string]float64, numStreamStats),
		Gauges:   map[string]float64{},
		Shards:   make([]metrics.ShardMetrics, 0, len(shards)),
	}
	for i, name := range metrics.StreamCounters {
		sm.Counters[name] = float64(st.stats.c[i].Load())
	}
	maxAge := int64(0)
	for i, sh := range shards {
		if sh.expired.Load() {
			continue
		}
		open := !closed[i]
		if open {
			sm.OpenShards++
		}
		m := metrics.ShardMetrics{ShardID: sh.id, Open: open, Counters: make(map[string]float64, numShardStats)}
		for i, name := range metrics.ShardCounters {
			m.Counters[name] = float64(sh.stats.c[i].Load())
		}
		age := sh.stats.iterAge.Load()
		maxAge = max(maxAge, age)
		m.Gauges = map[string]float64{metrics.IteratorAge: float64(age)}
		sm.Shards = append(sm.Shards, m)
	}
	sm.Gauges[metrics.GetRecordsIteratorAge] = float64(maxAge)
	return sm
}

// serveMetrics answers GET /ksp/metrics with Metrics as JSON.
func (s *Server) serveMetrics(w http.ResponseWriter) {
	b, err := json.Marshal(s.Metrics())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
