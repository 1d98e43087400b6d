package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestRecordDataMemoryReusedAfterProcessing: once a batch was processed,
// the memory its records' data were decoded into serves a later batch (a
// long-running consumer decodes into the same memory), and every handler
// call still sees its own records' data.
func TestRecordDataMemoryReusedAfterProcessing(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "reuse", 1)
	var (
		mu      sync.Mutex // guards: seen, addrs, wrong
		seen    = map[string]bool{}
		addrs   = map[uintptr]int{} // first record's data address → batches
		wrong   []string
		current string // the data of the round being put
	)
	h := func(_ context.Context, recs []consumer.Record) error {
		mu.Lock()
		defer mu.Unlock()
		addrs[uintptr(unsafe.Pointer(unsafe.SliceData(recs[0].Data)))]++
		for _, r := range recs {
			if string(r.Data) != current {
				wrong = append(wrong, fmt.Sprintf("%q in round %q", r.Data, current))
			}
			seen[string(r.Data)] = true
		}
		return nil
	}
	start(t, append(fast("reuse", client, memory.New(), "w1"), consumer.WithHandler(h))...)
	const rounds = 6
	for i := range rounds {
		data := fmt.Sprintf("round-%d", i)
		mu.Lock()
		current = data
		mu.Unlock()
		putData(t, client, "reuse", data, data, data)
		waitFor(t, 10*time.Second, data+" processed", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen[data]
		})
		time.Sleep(30 * time.Millisecond) // an idle poll or two: the batch is released
	}
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Fatalf("handlers saw data of another batch: %v", wrong)
	}
	reused := 0
	for _, n := range addrs {
		reused += n - 1
	}
	if reused == 0 {
		t.Fatalf("%d rounds decoded into %d different places; want memory reused", rounds, len(addrs))
	}
}
