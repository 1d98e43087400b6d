package replicate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/replicate"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// deliveryErrors is a HookDeliveryError that keeps every error.
type deliveryErrors struct {
	mu   sync.Mutex // guards: errs
	errs []error
}

func (d *deliveryErrors) OnDeliveryError(_ string, err error) {
	d.mu.Lock()
	d.errs = append(d.errs, err)
	d.mu.Unlock()
}

func (d *deliveryErrors) first() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.errs) == 0 {
		return nil
	}
	return d.errs[0]
}

// TestRefusedRecordHoldsTheShard: a record the destination refuses (the
// Transform makes it larger than 1 MiB) fails with Kinesis's typed error,
// reported to HookDeliveryError; the records before it arrive and are
// checkpointed, nothing after it is checkpointed while it keeps failing,
// and once it can be delivered the shard goes on: every record arrives,
// in order.
func TestRefusedRecordHoldsTheShard(t *testing.T) {
	srcSrv := servertest.Start(t, server.Options{DisableLimits: true})
	dstSrv := servertest.Start(t, server.Options{DisableLimits: true})
	src, dst := servertest.Client(t, srcSrv), servertest.Client(t, dstSrv)
	servertest.CreateStream(t, src, "src", 1)
	servertest.CreateStream(t, dst, "dst", 1)
	p, err := producer.New(src, "src", producer.StrictOrdering(true))
	if err != nil {
		t.Fatal(err)
	}
	for n := range 100 {
		if _, err := p.Put(bg, producer.Record{PartitionKey: "k000", Data: []byte(keyed(0, n))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(bg); err != nil {
		t.Fatal(err)
	}

	var refuse atomic.Bool
	refuse.Store(true)
	var (
		posMu sync.Mutex            // guards: pos
		pos   = map[string]string{} // data -> its checkpoint in the source
	)
	var (
		cpMu sync.Mutex // guards: cps
		cps  []lease.Checkpoint
	)
	bad := &deliveryErrors{}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- replicate.Run(ctx, replicate.Config{
			From: "src", Source: src, Leases: memory.New(), To: "dst", Destination: dst, MaxInFlight: 10,
			Transform: func(ctx context.Context, r consumer.Record) (producer.Record, bool, error) {
				posMu.Lock()
				pos[string(r.Data)] = lease.Checkpoint{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}.String()
				posMu.Unlock()
				out, keep, err := replicate.Identity(ctx, r)
				if string(r.Data) == keyed(0, 50) && refuse.Load() {
					out.Data = bytes.Repeat([]byte("x"), 1<<20+1)
				}
				return out, keep, err
			},
			ConsumerOptions: append(fastConsumer("w"), consumer.WithHooks(checkpointHook(func(_ string, cp lease.Checkpoint, err error) {
				if err == nil {
					cpMu.Lock()
					cps = append(cps, cp)
					cpMu.Unlock()
				}
			}))),
			Hooks: []replicate.Hook{bad},
		})
	}()
	out := readStream(t, dst, "dst")
	waitFor(t, 20*time.Second, "the refused record reported", func() bool { return bad.first() != nil })
	var kerr *kds.Error
	if err := bad.first(); !errors.As(err, &kerr) || kerr.Code != kds.ErrCodeInvalidArgument || !strings.Contains(err.Error(), "exceeds the MaxRecordSize") {
		t.Fatalf("delivery error %v; want Kinesis's InvalidArgumentException naming the size", err)
	}
	waitFor(t, 10*time.Second, "the 50 records before it", func() bool { return out.unique() == 50 })
	time.Sleep(300 * time.Millisecond) // a few retries of the refused record
	if n := out.unique(); n != 50 {
		t.Fatalf("%d records arrived while record 50 was refused; want the 50 before it", n)
	}
	// The checkpoint is written after the destination acknowledged: wait
	// for it to reach record 49 (a slow machine may not be there yet), then
	// check that it never went past.
	posMu.Lock()
	want := pos[keyed(0, 49)]
	posMu.Unlock()
	lastCheckpoint := func() string {
		cpMu.Lock()
		defer cpMu.Unlock()
		if len(cps) == 0 {
			return ""
		}
		return cps[len(cps)-1].String()
	}
	waitFor(t, 10*time.Second, "the checkpoint at record 49", func() bool { return lastCheckpoint() == want })
	time.Sleep(300 * time.Millisecond) // more retries of the refused record
	if last := lastCheckpoint(); last != want {
		t.Fatalf("checkpoint %s while record 50 was refused; want record 49's, %s", last, want)
	}

	refuse.Store(false)
	waitFor(t, 20*time.Second, "every record", func() bool { return out.unique() == 100 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out.stop()
	out.checkOrder(t, 1, 100)
}

// TestTransformFilters: a Transform that drops one key's records and
// rewrites the others'; only the kept ones arrive, rewritten.
func TestTransformFilters(t *testing.T) {
	srcSrv := servertest.Start(t, server.Options{DisableLimits: true})
	dstSrv := servertest.Start(t, server.Options{DisableLimits: true})
	src, dst := servertest.Client(t, srcSrv), servertest.Client(t, dstSrv)
	servertest.CreateStream(t, src, "src", 2)
	servertest.CreateStream(t, dst, "dst", 1)
	p, err := producer.New(src, "src")
	if err != nil {
		t.Fatal(err)
	}
	for n := range 200 {
		if _, err := p.Put(bg, producer.Record{PartitionKey: fmt.Sprintf("k%03d", n%10), Data: []byte(keyed(n%10, n/10))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- replicate.Run(ctx, replicate.Config{
			From: "src", Source: src, Leases: memory.New(), To: "dst", Destination: dst, ConsumerOptions: fastConsumer("w"),
			Transform: func(_ context.Context, r consumer.Record) (producer.Record, bool, error) {
				if strings.HasPrefix(string(r.Data), "k001-") { // key k001 stays behind
					return producer.Record{}, false, nil
				}
				return producer.Record{PartitionKey: r.PartitionKey, Data: append([]byte("x"), r.Data...)}, true, nil
			},
		})
	}()
	var (
		mu  sync.Mutex // guards: got
		got = map[string]bool{}
	)
	c, err := consumer.New(append(fastConsumer("reader"), consumer.WithStream("dst"), consumer.WithKinesis(dst), consumer.WithLeaseStore(memory.New()),
		consumer.WithInitialPosition(consumer.TrimHorizon()), consumer.WithHandler(func(_ context.Context, recs []consumer.Record) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				got[string(r.Data)] = true
			}
			return nil
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	readCtx, stopRead := context.WithCancel(bg)
	readDone := make(chan error, 1)
	go func() { readDone <- c.Run(readCtx) }()
	waitFor(t, 20*time.Second, "180 records", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 180 })
	time.Sleep(200 * time.Millisecond)
	cancel()
	stopRead()
	<-done
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 180 {
		t.Fatalf("%d records arrived; want the 180 not of key k001", len(got))
	}
	for d := range got {
		if !strings.HasPrefix(d, "xk") || strings.HasPrefix(d, "xk001-") {
			t.Fatalf("record %q arrived; want rewritten records of every key but k001", d)
		}
	}
}
