package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// countingKinesis counts the GetRecords errors a consumer saw, by kind.
type countingKinesis struct {
	consumer.KinesisAPI
	expired, throttled atomic.Int64
}

func (c *countingKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := c.KinesisAPI.GetRecords(ctx, in, optFns...)
	switch {
	case kds.Code(err) == kds.ErrCodeExpiredIterator:
		c.expired.Add(1)
	case kds.IsThrottle(err):
		c.throttled.Add(1)
	}
	return out, err
}

type throttleHook struct{ n atomic.Int64 }

func (h *throttleHook) OnThrottle(string) { h.n.Add(1) }

// Iterators that expire (the server's clock jumps 6 minutes) and reads that
// are throttled for a while are recovered from without loss or replay.
func TestExpiredIteratorsAndThrottling(t *testing.T) {
	var skew atomic.Int64
	srv, client := startServer(t, server.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	servertest.CreateStream(t, client, "exp", 2)
	store := memory.NewWithTable()
	sk := newSink()
	p := newProducer(client, "exp", 20)
	p.round(t)
	k := &countingKinesis{KinesisAPI: servertest.Client(t, srv, servertest.NoRetries)}
	th := &throttleHook{}
	r := start(t, append(fast("exp", k, store, "w1"), consumer.WithHandler(sk.handler("w1")), consumer.WithHooks(th))...)
	waitFor(t, 10*time.Second, "first records", func() bool { return sk.unique() == p.total() })

	skew.Add(int64(6 * time.Minute))
	p.round(t)
	waitFor(t, 10*time.Second, "an expired iterator", func() bool { return k.expired.Load() > 0 })
	waitFor(t, 10*time.Second, "records after the expiry", func() bool { return sk.unique() == p.total() })

	p.round(t)
	if err := srv.SetFaults(server.Faults{Throttle: []string{"exp/*"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "throttled reads", func() bool { return th.n.Load() >= 2 })
	if err := srv.SetFaults(server.Faults{}); err != nil {
		t.Fatal(err)
	}
	p.round(t)
	waitFor(t, 10*time.Second, "records after throttling", func() bool { return sk.unique() == p.total() })
	r.stop(t)
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d duplicates", d)
	}
	sk.checkOrder(t, p.total())
}
