package esm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// keysInGroups returns a partition key for each of n batchers.
func keysInGroups(n int) []string {
	keys := make([]string, n)
	found := 0
	for i := 0; found < n && i < 10000; i++ {
		k := fmt.Sprint("key-", i)
		if g := keyGroup(k, n); keys[g] == "" {
			keys[g] = k
			found++
		}
	}
	return keys
}

func TestParallelizationFactorKeepsPerKeyOrder(t *testing.T) {
	keys := keysInGroups(2)
	a, b := keys[0], keys[1]
	s := newStreamKeys(t, a, b, a, b, a, b) // r0 r2 r4 on a, r1 r3 r5 on b
	cfg := s.config()
	cfg.ParallelizationFactor = 2
	bStarted := make(chan struct{})
	var mu sync.Mutex
	perKey := map[string][]string{}
	got := run(s, cfg, func(ctx context.Context, ev events.KinesisEvent) error {
		names := s.logInvoke(ev)
		key := ev.Records[0].Kinesis.PartitionKey
		for _, r := range ev.Records {
			if r.Kinesis.PartitionKey != key {
				return fmt.Errorf("one batch mixes keys %s and %s", key, r.Kinesis.PartitionKey)
			}
		}
		mu.Lock()
		perKey[key] = append(perKey[key], strings.Join(names, ","))
		nth := len(perKey[key])
		mu.Unlock()
		if key == b {
			if nth == 1 {
				close(bStarted)
			}
			return nil
		}
		if nth > 1 {
			return nil
		}
		// The two keys' batches run at once: a waits for b to start.
		select {
		case <-bStarted:
		case <-time.After(10 * time.Second):
			return errors.New("b's batch never started while a's ran")
		}
		return errors.New("a fails once")
	})
	if want := []string{"r0,r2,r4", "r0,r2,r4"}; !slices.Equal(perKey[a], want) {
		t.Fatalf("invokes of key a %q, want %q (log %q)", perKey[a], want, got)
	}
	if want := []string{"r1,r3,r5"}; !slices.Equal(perKey[b], want) {
		t.Fatalf("invokes of key b %q, want %q (log %q)", perKey[b], want, got)
	}
	// Nothing is checkpointed past r0 before a's retry handled it.
	var checkpoints []string
	retried := false
	for i, e := range got {
		if e == "invoke r0,r2,r4" && i > slices.Index(got, "invoke r0,r2,r4") {
			retried = true
		}
		if strings.HasPrefix(e, "checkpoint") {
			if !retried {
				t.Fatalf("%s before r0 was handled: %q", e, got)
			}
			checkpoints = append(checkpoints, e)
		}
	}
	if !slices.Equal(checkpoints, []string{"checkpoint r5"}) && !slices.Equal(checkpoints, []string{"checkpoint r0", "checkpoint r5"}) {
		t.Fatalf("checkpoints %q", checkpoints)
	}
}

// Progress marks of a parallel run: the checkpointable prefix moves only
// over records every batcher has handled, and each commit marks only the
// records it newly covers (a batcher's commits come in order, each
// covering all of the group's records before it).
func TestParallelProgressMarksAreIncremental(t *testing.T) {
	// Run positions 0…5; group 0 holds 0, 2, 4 and group 1 holds 1, 3, 5.
	m := newProgressMarks(6, 2)
	m.index[0] = []int{0, 2, 4}
	m.index[1] = []int{1, 3, 5}
	steps := []struct {
		group, upTo int
		grew        bool
		prefix      int
	}{
		{0, 2, true, 1},  // 0 and 2 handled; 1 is not
		{0, 2, false, 1}, // the same mark again marks nothing
		{1, 1, true, 3},  // 1 handled: 0…2
		{0, 1, false, 3}, // a stale mark changes nothing
		{1, 3, true, 4},  // 3 and 5 handled; 4 is not
		{0, 3, true, 6},
	}
	for i, st := range steps {
		before := slices.Clone(m.marked)
		if grew := m.mark(st.group, st.upTo); grew != st.grew || m.prefix != st.prefix {
			t.Fatalf("step %d: mark(%d, %d) grew %v, prefix %d; want %v, %d", i, st.group, st.upTo, grew, m.prefix, st.grew, st.prefix)
		}
		if want := max(before[st.group], st.upTo); m.marked[st.group] != want {
			t.Fatalf("step %d: group %d marked up to %d, want %d", i, st.group, m.marked[st.group], want)
		}
	}
}
