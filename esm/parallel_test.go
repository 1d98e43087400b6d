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
