package esm

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/ksp-project/ksp/consumer"
)

// putOnFirstPoll is a HookEvents that puts two records once the first
// read of the stream has been polled (from the shard's goroutine, which
// alone touches the stream's log and sequence numbers while it runs).
type putOnFirstPoll struct {
	s    *stream
	once sync.Once
}

func (h *putOnFirstPoll) OnEvents(string, int, int) {
	h.once.Do(func() { h.s.put([]string{"k1", "k2"}) })
}

// With MaximumBatchingWindowInSeconds, Lambda keeps reading until the
// batch is full or the window has passed: records of later reads join the
// first one's invoke.
func TestBatchingWindowGathersRecordsOfSeveralReads(t *testing.T) {
	s := newStream(t, 1)
	cfg := s.config()
	cfg.BatchSize = 10
	cfg.MaximumBatchingWindowInSeconds = 3 // ample for the next read, even on a loaded machine
	cfg.Hooks = []Hook{&putOnFirstPoll{s: s}}
	got := run(s, cfg, failing(s, 0))
	expectLog(t, got, "invoke r0,r1,r2", "checkpoint r2")
}

// A full batch does not wait for the window; what is left at shard end is
// invoked then.
func TestBatchingWindowInvokesFullBatchesAtOnceAndTheRestAtShardEnd(t *testing.T) {
	s := newStream(t, 5)
	s.split()
	cfg := s.config()
	cfg.BatchSize = 2
	cfg.MaximumBatchingWindowInSeconds = 300
	got := run(s, cfg, failing(s, 0)) // fails the test unless done within 20 s
	expectLog(t, withoutShardEnd(got),
		"invoke r0,r1", "checkpoint r1",
		"invoke r2,r3", "checkpoint r3",
		"invoke r4", "checkpoint r4")
}

// A batch whose event reaches the invoke payload cap (6 MB; lowered here)
// is full too: it is invoked without waiting for the window, and the
// record left over waits, here until shard end.
func TestBatchingWindowInvokesOnceThePayloadCapIsReached(t *testing.T) {
	s := newStream(t, 0)
	s.putWith([]string{"k", "k", "k", "k", "k"}, func(i int) []byte {
		return append(fmt.Appendf(nil, "r%d.", i), bytes.Repeat([]byte{'x'}, 300)...)
	})
	cfg := s.config()
	cfg.MaximumBatchingWindowInSeconds = 300
	src, err := newSource(s.arn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	one := src.recordSize(consumer.Record{Data: make([]byte, 304), PartitionKey: "k", SequenceNumber: s.seqs[0],
		ShardID: "shardId-000000000000", ApproximateArrivalTimestamp: s.arrival[s.seqs[0]]})
	// Four records and their commas, with room for their times' digits to
	// differ; a fifth (over 400 bytes) does not fit.
	cfg.maxPayload = eventEnvelope + 4*one + 3 + 40
	var split sync.Once
	got := run(s, cfg, func(_ context.Context, ev events.KinesisEvent) error {
		names := make([]string, len(ev.Records))
		for i, r := range ev.Records {
			names[i], _, _ = strings.Cut(string(r.Kinesis.Data), ".")
		}
		s.record("invoke " + strings.Join(names, ","))
		split.Do(s.split) // the shard ends: r4 need not wait 300 s
		return nil
	})
	expectLog(t, withoutShardEnd(got),
		"invoke r0,r1,r2,r3", "checkpoint r3",
		"invoke r4", "checkpoint r4")
}

// The filters read a record's data in place: only the records they keep
// are copied (and sized, once), so a read the filters mostly drop does not
// copy the whole read.
func TestFiltersRunBeforeRecordsAreCopied(t *testing.T) {
	f, err := compileFilter(`{"data":{"kind":["order"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	src := exampleSource(t)
	// A long batching window keeps what is read pending, invoking nothing.
	s := settings{Config: Config{BatchSize: 100, MaximumBatchingWindowInSeconds: 300}, filters: []filter{f}}
	p := &shardRunner{r: &runner{s: s, src: src}}
	dropped := bytes.Repeat([]byte{'x'}, 1<<20) // not JSON: matches no filter
	in := consumer.ProcessRecordsInput{ShardID: "shardId-000000000000"}
	for i := range 16 {
		in.Records = append(in.Records, consumer.Record{Data: dropped, PartitionKey: "k", SequenceNumber: fmt.Sprint(100 + i), ShardID: in.ShardID})
	}
	kept := []byte(`{"kind":"order"}`)
	in.Records = append(in.Records, consumer.Record{Data: kept, PartitionKey: "k", SequenceNumber: "200", ShardID: in.ShardID})

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := p.ProcessRecords(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Errorf("reading 16 MiB of records the filters drop allocated %d bytes: they were copied", n)
	}
	if len(p.pending) != 1 || !bytes.Equal(p.pending[0].Data, kept) || &p.pending[0].Data[0] == &kept[0] {
		t.Fatalf("pending %+v: want a copy of the kept record", p.pending)
	}
	if size := src.recordSize(p.pending[0]); len(p.sizes) != 1 || p.sizes[0] != size || p.bytes != size+1 {
		t.Fatalf("sizes %v, bytes %d: want [%d], %d", p.sizes, p.bytes, size, size+1)
	}
	if p.read.SequenceNumber != "200" || p.read.Data != nil {
		t.Fatalf("last read %+v: want sequence 200 without its data", p.read)
	}
}
