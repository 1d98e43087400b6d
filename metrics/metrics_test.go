package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func snapshot(at time.Time, incoming float64, shards map[string]float64) *Snapshot {
	sm := StreamMetrics{StreamName: "s", Counters: map[string]float64{IncomingRecords: incoming}, Gauges: map[string]float64{GetRecordsIteratorAge: incoming}}
	for id, v := range shards {
		sm.Shards = append(sm.Shards, ShardMetrics{ShardID: id, Counters: map[string]float64{IncomingRecords: v}})
	}
	return &Snapshot{Time: at, Streams: []StreamMetrics{sm}}
}

func TestRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := snapshot(t0, 100, map[string]float64{"a": 60, "b": 40})
	cur := snapshot(t0.Add(2*time.Second), 300, map[string]float64{"a": 20, "b": 240, "c": 40})
	r := Rates(prev, cur)
	if r.Interval != 2*time.Second {
		t.Fatalf("interval %v", r.Interval)
	}
	s := r.Stream("s")
	if got := s.Counters[IncomingRecords]; got != 100 {
		t.Errorf("stream rate %v, want 100/s", got)
	}
	if got := s.Gauges[GetRecordsIteratorAge]; got != 300 {
		t.Errorf("gauge %v, want cur's 300", got)
	}
	// a went down: counted from zero; b moved 200 in 2 s; c is new.
	for id, want := range map[string]float64{"a": 10, "b": 100, "c": 20} {
		if got := s.Shard(id).Counters[IncomingRecords]; got != want {
			t.Errorf("shard %s rate %v, want %v", id, got, want)
		}
	}
	if cur.Stream("s").Counters[IncomingRecords] != 300 {
		t.Error("Rates changed its input")
	}
	if z := Rates(nil, cur).Stream("s").Counters[IncomingRecords]; z != 0 {
		t.Errorf("rate without a previous snapshot %v, want 0", z)
	}
}

func TestFetchSaysWhatIsWrong(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("{not json"))
	}))
	defer srv.Close()
	ctx := context.Background()
	if _, err := Fetch(ctx, nil, srv.URL); err == nil || !strings.Contains(err.Error(), "decoding") {
		t.Errorf("bad JSON: %v", err)
	}
	if _, err := Fetch(ctx, nil, srv.URL+"/elsewhere"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("not found: %v", err)
	}
}
