package esm

import (
	"sync"
	"testing"
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
	cfg.MaximumBatchingWindowInSeconds = 2
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
