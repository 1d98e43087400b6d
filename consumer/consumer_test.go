package consumer_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestNewValidates(t *testing.T) {
	_, client := startServer(t, server.Options{})
	store := memory.New()
	h := func(context.Context, []consumer.Record) error { return nil }
	base := []consumer.Option{consumer.WithStream("s"), consumer.WithKinesis(client), consumer.WithLeaseStore(store), consumer.WithHandler(h)}
	for _, tc := range []struct {
		name string
		opts []consumer.Option
		want string
	}{
		{"no stream", []consumer.Option{consumer.WithKinesis(client), consumer.WithLeaseStore(store), consumer.WithHandler(h)}, "WithStream"},
		{"no client", []consumer.Option{consumer.WithStream("s"), consumer.WithLeaseStore(store), consumer.WithHandler(h)}, "WithKinesis"},
		{"no store", []consumer.Option{consumer.WithStream("s"), consumer.WithKinesis(client), consumer.WithHandler(h)}, "WithLeaseStore"},
		{"no processor", []consumer.Option{consumer.WithStream("s"), consumer.WithKinesis(client), consumer.WithLeaseStore(store)}, "exactly one"},
		{"failover", append(base, consumer.WithFailoverTime(time.Millisecond)), "failover time 1ms"},
		{"max records", append(base, consumer.WithMaxRecords(10001)), "max records 10001"},
		{"max records beyond int32", append(base, consumer.WithMaxRecords(1<<32+100)), "max records 4294967396"},
		{"not a hook", append(base, consumer.WithHooks(new(atomic.Int64))), "hook 0 (*atomic.Int64) implements no Hook interface"},
		{"idle", append(base, consumer.WithIdleTime(0)), "idle time 0s"},
		{"prefetch", append(base, consumer.WithPrefetch(0)), "prefetch 0"},
		{"steal", append(base, consumer.WithMaxLeasesToSteal(0)), "steal 0"},
		{"max leases", append(base, consumer.WithMaxLeases(-1)), "max leases -1"},
		{"fan-out name", append(base, consumer.WithFanOut("my app")), `fan-out consumer name "my app"`},
		{"fan-out client", append(base, consumer.WithKinesis(pollingOnly{client}), consumer.WithFanOut("app")), "does not implement FanOutAPI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := consumer.New(tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := consumer.New(base...); err != nil {
		t.Fatalf("New with valid options: %v", err)
	}
}

// One worker drains a stream, then a restart replays nothing.
func TestConsumesEveryRecordOnce(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "once", 4)
	store := memory.New()
	p := newProducer(client, "once", 50)
	for range 4 {
		p.round(t)
	}
	sk := newSink()
	var checkpoints atomic.Int64
	hook := checkpointHook(func(string, lease.Checkpoint, error) { checkpoints.Add(1) })
	r := start(t, append(fast("once", client, store, "w1"), consumer.WithHandler(sk.handler("w1")), consumer.WithHooks(hook))...)
	waitFor(t, 20*time.Second, "all records", func() bool { return sk.unique() == p.total() })
	r.stop(t)
	if checkpoints.Load() == 0 {
		t.Fatal("no checkpoint hook calls")
	}
	for _, l := range mustList(t, store) {
		if l.LeaseOwner != "" {
			t.Errorf("lease %s still owned by %q after shutdown", l.LeaseKey, l.LeaseOwner)
		}
		if l.Checkpoint.IsSentinel() {
			t.Errorf("lease %s checkpoint %s, want a sequence number", l.LeaseKey, l.Checkpoint)
		}
	}
	p.round(t)
	r2 := start(t, append(fast("once", client, store, "w2"), consumer.WithHandler(sk.handler("w2")))...)
	waitFor(t, 20*time.Second, "new records", func() bool { return sk.unique() == p.total() })
	r2.stop(t)
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d records replayed after a graceful restart", d)
	}
	sk.checkOrder(t, p.total())
}

type checkpointHook func(string, lease.Checkpoint, error)

func (h checkpointHook) OnCheckpoint(shard string, cp lease.Checkpoint, err error) { h(shard, cp, err) }

func mustList(t *testing.T, s lease.Store) []lease.Lease {
	t.Helper()
	ls, err := s.ListLeases(bg)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// pollingOnly is a Kinesis client with only the polling calls.
type pollingOnly struct{ consumer.KinesisAPI }
