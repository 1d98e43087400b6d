// Package metrics is the shape of a ksp server's stream metrics, shared by
// the server that counts them and every reader: ksp top, ksp cost
// --from-stream, autoscaling and tests.
//
// The server keeps cumulative counters (monotonic since it started) named
// exactly as CloudWatch's AWS/Kinesis metrics, per stream and per shard, and
// serves them as JSON at GET /ksp/metrics on its API port. A reader takes two
// snapshots and turns them into per-second rates with Rates, the way
// Prometheus turns counters into rates; gauges (iterator age) are read as
// they are.
//
// Counting is per request, never per record, so it costs the hot path a few
// atomic adds. Counters of a stream start again from zero when the stream is
// deleted and created again; Rates treats a counter that went down as a
// restart.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Path is where the server serves its Snapshot as JSON.
const Path = "/ksp/metrics"

// Stream-level counter names (CloudWatch AWS/Kinesis, dimension StreamName).
const (
	IncomingBytes                      = "IncomingBytes"
	IncomingRecords                    = "IncomingRecords"
	PutRecordSuccess                   = "PutRecord.Success"
	PutRecordBytes                     = "PutRecord.Bytes"
	PutRecordsSuccess                  = "PutRecords.Success"
	PutRecordsBytes                    = "PutRecords.Bytes"
	PutRecordsTotalRecords             = "PutRecords.TotalRecords"
	PutRecordsSuccessfulRecords        = "PutRecords.SuccessfulRecords"
	PutRecordsFailedRecords            = "PutRecords.FailedRecords"
	PutRecordsThrottledRecords         = "PutRecords.ThrottledRecords"
	GetRecordsSuccess                  = "GetRecords.Success"
	GetRecordsRecords                  = "GetRecords.Records"
	GetRecordsBytes                    = "GetRecords.Bytes"
	WriteProvisionedThroughputExceeded = "WriteProvisionedThroughputExceeded"
	ReadProvisionedThroughputExceeded  = "ReadProvisionedThroughputExceeded"
	SubscribeToShardSuccess            = "SubscribeToShard.Success"
	SubscribeToShardEventRecords       = "SubscribeToShardEvent.Records"
	SubscribeToShardEventBytes         = "SubscribeToShardEvent.Bytes"

	// GetRecordsIteratorAge is the stream-level gauge: the largest iterator
	// age of the stream's shards at their latest read.
	GetRecordsIteratorAge = "GetRecords.IteratorAgeMilliseconds"
)

// Shard-level names (CloudWatch enhanced monitoring, dimensions StreamName
// and ShardId). WriteProvisionedThroughputExceeded counts records refused,
// ReadProvisionedThroughputExceeded GetRecords calls refused.
const (
	OutgoingBytes   = "OutgoingBytes"
	OutgoingRecords = "OutgoingRecords"

	// IteratorAge is the shard-level gauge: now minus the arrival time of
	// the last record of the shard's latest read (GetRecords or a
	// subscription event), 0 when that read was at the tip.
	IteratorAge = "IteratorAgeMilliseconds"
)

// StreamCounters lists the stream-level counter names in the order the
// server reports them.
var StreamCounters = []string{
	IncomingBytes, IncomingRecords,
	PutRecordSuccess, PutRecordBytes,
	PutRecordsSuccess, PutRecordsBytes, PutRecordsTotalRecords, PutRecordsSuccessfulRecords,
	PutRecordsFailedRecords, PutRecordsThrottledRecords,
	GetRecordsSuccess, GetRecordsRecords, GetRecordsBytes,
	WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded,
	SubscribeToShardSuccess, SubscribeToShardEventRecords, SubscribeToShardEventBytes,
}

// ShardCounters lists the shard-level counter names.
var ShardCounters = []string{
	IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords,
	WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded,
}

// Snapshot is a server's counters at one instant. In a Snapshot made by
// Rates, counters are per-second rates over the interval instead.
type Snapshot struct {
	Time time.Time `json:"Time"`
	// Interval is the length the rates of a Snapshot from Rates are over;
	// zero in a snapshot of cumulative counters.
	Interval time.Duration   `json:"Interval,omitempty"`
	Streams  []StreamMetrics `json:"Streams"`
}

// StreamMetrics are one stream's counters and gauges.
type StreamMetrics struct {
	StreamName string             `json:"StreamName"`
	StreamARN  string             `json:"StreamARN"`
	Mode       string             `json:"StreamMode"` // PROVISIONED or ON_DEMAND
	OpenShards int                `json:"OpenShards"`
	Counters   map[string]float64 `json:"Counters"`
	Gauges     map[string]float64 `json:"Gauges"`
	Shards     []ShardMetrics     `json:"Shards"`
}

// ShardMetrics are one shard's counters and gauges. Closed shards stay
// listed until they expire.
type ShardMetrics struct {
	ShardID  string             `json:"ShardId"`
	Open     bool               `json:"Open"`
	Counters map[string]float64 `json:"Counters"`
	Gauges   map[string]float64 `json:"Gauges"`
}

// Stream returns the metrics of the stream named name, or nil.
func (s *Snapshot) Stream(name string) *StreamMetrics {
	for i := range s.Streams {
		if s.Streams[i].StreamName == name {
			return &s.Streams[i]
		}
	}
	return nil
}

// Shard returns the metrics of the shard id, or nil.
func (sm *StreamMetrics) Shard(id string) *ShardMetrics {
	for i := range sm.Shards {
		if sm.Shards[i].ShardID == id {
			return &sm.Shards[i]
		}
	}
	return nil
}

// Rates returns cur with every counter replaced by its per-second rate since
// prev; gauges are cur's. A stream or shard absent from prev counts from
// zero, and so does a counter that went down (the stream was created again
// or the server restarted). prev may be nil: the rates are then over the
// time since cur's counters started, which is unknown, so every rate is 0.
//
// prev's streams and shards are looked up by name through maps made once,
// so a snapshot of many streams or shards costs linear time.
func Rates(prev, cur *Snapshot) *Snapshot {
	out := &Snapshot{Time: cur.Time, Streams: make([]StreamMetrics, len(cur.Streams))}
	secs := 0.0
	prevStreams := map[string]*StreamMetrics{}
	if prev != nil {
		out.Interval = cur.Time.Sub(prev.Time)
		secs = out.Interval.Seconds()
		for i := range slices.Backward(prev.Streams) { // the first of a name wins, as in Stream
			prevStreams[prev.Streams[i].StreamName] = &prev.Streams[i]
		}
	}
	for i, cs := range cur.Streams {
		ps := prevStreams[cs.StreamName]
		var before map[string]float64
		prevShards := map[string]map[string]float64{}
		if ps != nil {
			before = ps.Counters
			for _, psh := range slices.Backward(ps.Shards) {
				prevShards[psh.ShardID] = psh.Counters
			}
		}
		rs := cs
		rs.Counters = rate(before, cs.Counters, secs)
		rs.Shards = make([]ShardMetrics, len(cs.Shards))
		for j, csh := range cs.Shards {
			rsh := csh
			rsh.Counters = rate(prevShards[csh.ShardID], csh.Counters, secs)
			rs.Shards[j] = rsh
		}
		out.Streams[i] = rs
	}
	return out
}

func rate(prev, cur map[string]float64, secs float64) map[string]float64 {
	out := make(map[string]float64, len(cur))
	for name, v := range cur {
		if secs <= 0 {
			out[name] = 0
			continue
		}
		p := prev[name]
		if v < p {
			p = 0 // a counter that went down started again
		}
		out[name] = (v - p) / secs
	}
	return out
}

// Fetch reads the Snapshot a ksp server serves at endpoint (its API
// address, e.g. http://127.0.0.1:4567). hc nil means http.DefaultClient.
func Fetch(ctx context.Context, hc *http.Client, endpoint string) (*Snapshot, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	url := strings.TrimRight(endpoint, "/") + Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: endpoint %q: %w", endpoint, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("metrics: GET %s: %s: %s (is it a ksp server?)", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	var s Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("metrics: GET %s: decoding the answer: %w", url, err)
	}
	return &s, nil
}
