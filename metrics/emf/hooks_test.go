package emf_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/metrics/emf"
	"github.com/ksp-project/ksp/metrics/internal/flowtest"
	"github.com/ksp-project/ksp/producer"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes, as an *os.File is.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf.Bytes())
}

// The hooks' documents validate, and their values add up to what really
// went through a producer and a consumer.
func TestHooksWriteValidDocumentsOfWhatFlowed(t *testing.T) {
	var out syncBuffer
	w := newWriter(t, &out)
	pm := emf.NewProducerMetrics(w)
	cm := emf.NewConsumerMetrics(w)

	// Run flushes while the hooks are called, as in production.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, m := range []*emf.Metrics{pm.Metrics, cm.Metrics} {
		wg.Go(func() { errs <- m.Run(ctx, 20*time.Millisecond) })
	}
	flowtest.Run(t, []producer.Hook{pm}, []consumer.Hook{cm.Hooks(flowtest.Stream, flowtest.App)})
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	all := docs(t, out.Bytes())
	sum := func(name string) float64 {
		s := 0.0
		for _, v := range values(all, name) {
			s += v
		}
		return s
	}
	want := map[string]float64{
		"UserRecordsReceived":   flowtest.Records,
		"UserRecordsPut":        flowtest.Records,
		"KinesisRecordsPut":     flowtest.Records,
		"KinesisRecordsDataPut": flowtest.Records*flowtest.DataSize + float64(flowtest.KeyBytes),
		"RecordsProcessed":      flowtest.Records,
		"DataBytesProcessed":    flowtest.Records * flowtest.DataSize,
		"TakenLeases":           flowtest.Shards,
	}
	for name, v := range want {
		if got := sum(name); got != v {
			t.Errorf("%s adds up to %v, want %v", name, got, v)
		}
	}
	if n := len(values(all, "BufferingTime")); n == 0 || n > flowtest.Records {
		t.Errorf("%d BufferingTime samples for %d records", n, flowtest.Records)
	}
	// Per-shard metrics carry the shard; the stream and application are on
	// every consumer document.
	shards := map[string]bool{}
	for _, d := range all {
		if _, ok := d["RecordsProcessed"]; !ok {
			continue
		}
		if d["StreamName"] != flowtest.Stream || d["ApplicationName"] != flowtest.App {
			t.Fatalf("consumer document without its stream and application: %v", d)
		}
		shards[d["ShardId"].(string)] = true
	}
	if len(shards) != flowtest.Shards {
		t.Errorf("RecordsProcessed reported for shards %v, want %d shards", shards, flowtest.Shards)
	}
}

// A distribution keeps at most 100 samples per flush, all of them values
// that were reported; counters restart at each flush.
func TestDistributionIsSampled(t *testing.T) {
	var out bytes.Buffer
	w := newWriter(t, &out)
	pm := emf.NewProducerMetrics(w)
	for i := range 1000 {
		pm.OnUserRecordDone(producer.UserRecordDone{Stream: "s", Result: producer.Result{Attempts: 1}, Buffered: time.Duration(i) * time.Millisecond})
	}
	if err := pm.Flush(); err != nil {
		t.Fatal(err)
	}
	all := docs(t, out.Bytes())
	got := values(all, "BufferingTime")
	if len(got) != emf.MaxValues {
		t.Fatalf("%d BufferingTime samples, want %d", len(got), emf.MaxValues)
	}
	late := 0
	for _, v := range got {
		if v != float64(int(v)) || v < 0 || v >= 1000 {
			t.Fatalf("sample %v was never reported", v)
		}
		if v >= 100 {
			late++
		}
	}
	if late == 0 {
		t.Fatal("only the first 100 samples were kept: not a sample of the whole interval")
	}
	if put := values(all, "UserRecordsPut"); len(put) != 1 || put[0] != 1000 {
		t.Fatalf("UserRecordsPut %v, want [1000]", put)
	}

	out.Reset()
	pm.OnUserRecordReceived("s", 10)
	if err := pm.Flush(); err != nil {
		t.Fatal(err)
	}
	all = docs(t, out.Bytes())
	if put := values(all, "UserRecordsPut"); len(put) != 0 {
		t.Fatalf("UserRecordsPut written again after the flush: %v", put)
	}
	if got := values(all, "UserRecordsReceived"); len(got) != 1 || got[0] != 1 {
		t.Fatalf("UserRecordsReceived %v, want [1]", got)
	}
}

// Gauges are written at every flush until the shard's lease is lost.
func TestGaugesStayUntilTheLeaseIsLost(t *testing.T) {
	var out bytes.Buffer
	w := newWriter(t, &out)
	cm := emf.NewConsumerMetrics(w)
	h := cm.Hooks("s", "")
	h.(consumer.HookShardLag).OnShardLag("shardId-000000000000", 1500)
	for range 2 {
		out.Reset()
		if err := cm.Flush(); err != nil {
			t.Fatal(err)
		}
		all := docs(t, out.Bytes())
		if got := values(all, "MillisBehindLatest"); len(got) != 1 || got[0] != 1500 {
			t.Fatalf("MillisBehindLatest %v, want [1500] at every flush", got)
		}
		if _, ok := all[0]["ApplicationName"]; ok {
			t.Fatalf("an empty application was written as a dimension: %v", all[0])
		}
	}
	h.(consumer.HookLeaseLost).OnLeaseLost("shardId-000000000000")
	out.Reset()
	if err := cm.Flush(); err != nil {
		t.Fatal(err)
	}
	all := docs(t, out.Bytes())
	if got := values(all, "MillisBehindLatest"); len(got) != 0 {
		t.Fatalf("MillisBehindLatest %v written after the lease was lost", got)
	}
	if got := values(all, "LostLeases"); len(got) != 1 || got[0] != 1 {
		t.Fatalf("LostLeases %v, want [1]", got)
	}
}
