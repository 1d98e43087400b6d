// Package flowtest runs records through a real producer and a real consumer
// against the embedded server, with the hooks under test, so that the
// metrics exporters' tests check what actually flowed.
package flowtest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// The flow: Records records of DataSize bytes, keys "key-0"… (KeyBytes of
// keys in all), through a producer without aggregation onto Shards shards of
// Stream, then read by one consumer of application App from TRIM_HORIZON.
const (
	Stream   = "metrics-flow"
	App      = "metrics-app"
	Shards   = 2
	Records  = 40
	DataSize = 16
)

// KeyBytes is the length of all partition keys together.
var KeyBytes = func() int {
	n := 0
	for i := range Records {
		n += len(key(i))
	}
	return n
}()

func key(i int) string { return fmt.Sprintf("key-%d", i) }

// Run puts the records with producerHooks, then consumes them all with
// consumerHooks, and returns when the consumer has stopped (its leases
// released).
func Run(t *testing.T, producerHooks []producer.Hook, consumerHooks []consumer.Hook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := servertest.Start(t, server.Options{})
	client := servertest.Client(t, srv)
	servertest.CreateStream(t, client, Stream, Shards)

	p, err := producer.New(client, Stream, producer.Aggregation(false), producer.MaxBufferedTime(10*time.Millisecond), producer.WithHooks(producerHooks...))
	if err != nil {
		t.Fatal(err)
	}
	for i := range Records {
		if _, err := p.Put(ctx, producer.Record{PartitionKey: key(i), Data: make([]byte, DataSize)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.UserRecordsPut != Records {
		t.Fatalf("producer put %d records, want %d", st.UserRecordsPut, Records)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var seen atomic.Int64
	c, err := consumer.New(
		consumer.WithStream(Stream),
		consumer.WithKinesis(client),
		consumer.WithLeaseStore(memory.New()),
		consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithIdleTime(50*time.Millisecond),
		consumer.WithHooks(consumerHooks...),
		consumer.WithHandler(func(_ context.Context, recs []consumer.Record) error {
			if seen.Add(int64(len(recs))) >= Records {
				stop()
			}
			return nil
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	if n := seen.Load(); n != Records {
		t.Fatalf("consumer saw %d records, want %d", n, Records)
	}
}
