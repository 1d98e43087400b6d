package consumer_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

type lagHook struct{ n atomic.Int64 }

func (h *lagHook) OnShardLag(shardID string, millisBehindLatest int64) { h.n.Add(1) }

// Fan-out subscriptions that end every 200 ms are renewed after the last
// continuation number: every record arrives once, in order, and the lag
// hook hears from the events. The server's clock runs 10 times fast, so
// Kinesis' 5 s between subscriptions to a shard is 0.5 s here and the
// test sees several renewals per shard.
func TestFanOutResubscribesWithoutReplayOrGap(t *testing.T) {
	origin := time.Now()
	fast10 := func() time.Time { return origin.Add(10 * time.Since(origin)) }
	_, client := startServer(t, server.Options{SubscriptionLifetime: 200 * time.Millisecond, Now: fast10})
	servertest.CreateStream(t, client, "fo", 2)
	sk := newSink()
	lag := &lagHook{}
	p := newProducer(client, "fo", 20)
	stopPut := p.background(t, 20*time.Millisecond)
	defer stopPut()
	start(t, append(fast("fo", client, memory.NewWithTable(), "w1"), consumer.WithFanOut("app"), consumer.WithHandler(sk.handler("w1")), consumer.WithHooks(lag))...)
	waitFor(t, 20*time.Second, "records over several subscriptions", func() bool { return sk.unique() > 2000 })
	stopPut()
	waitFor(t, 20*time.Second, "all records", func() bool { return sk.unique() == p.total() })
	sk.checkOrder(t, p.total())
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d records delivered twice across subscription renewals", d)
	}
	if lag.n.Load() == 0 {
		t.Fatal("the lag hook was never called")
	}
}

// A fan-out consumer whose stream consumer is deregistered under it
// registers it again and goes on consuming.
func TestFanOutReregistersADeregisteredConsumer(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "fo", 1)
	sk := newSink()
	p := newProducer(client, "fo", 5)
	start(t, append(fast("fo", client, memory.NewWithTable(), "w1"), consumer.WithFanOut("app"), consumer.WithHandler(sk.handler("w1")))...)
	p.round(t)
	waitFor(t, 10*time.Second, "the first records", func() bool { return sk.unique() == p.total() })
	sum, err := client.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("fo")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeregisterStreamConsumer(bg, &kinesis.DeregisterStreamConsumerInput{StreamARN: sum.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	p.round(t)
	waitFor(t, 20*time.Second, "records after the consumer was deregistered", func() bool { return sk.unique() == p.total() })
	sk.checkOrder(t, p.total())
}
