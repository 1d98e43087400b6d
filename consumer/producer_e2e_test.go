package consumer_test

import (
	"context"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	kspproducer "github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestFromTheProducer runs the ksp producer (KPL aggregation on, strict
// per-key ordering) into the ksp consumer: every user record arrives once,
// in put order per key, with its own partition key, and a second consumer on
// the same lease table after a graceful stop replays nothing. It runs over
// each of servertest.Transports; over "http1.1-late" the client has no
// workaround for smithy-go's HTTP/1.1 bug, so the producer's and the
// consumer's own fix is what keeps responses whole. Over "h2c-cbor" the
// client reads GetRecords in CBOR (sdkhttp.FastCodecsCBOR), which the
// consumer keeps.
func TestFromTheProducer(t *testing.T) {
	for _, tr := range servertest.Transports {
		t.Run(tr.Name, func(t *testing.T) { fromTheProducer(t, tr.Client) })
	}
	t.Run("h2c-cbor", func(t *testing.T) {
		fromTheProducer(t, func(tb servertest.TB, srv *server.Server, opts ...func(*kinesis.Options)) *kinesis.Client {
			return servertest.Client(tb, srv, append(opts, sdkhttp.FastCodecsCBOR)...)
		})
	})
}

func fromTheProducer(t *testing.T, newClient func(servertest.TB, *server.Server, ...func(*kinesis.Options)) *kinesis.Client) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	admin := servertest.Client(t, srv)
	client := newClient(t, srv)
	servertest.CreateStream(t, admin, "agg", 3)
	ctx := context.Background()

	p, err := kspproducer.New(client, "agg", kspproducer.Aggregation(true), kspproducer.StrictOrdering(true))
	if err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 50, 200
	var pendings []*kspproducer.Pending
	for i := range perKey {
		for k := range keys {
			pd, err := p.Put(ctx, kspproducer.Record{PartitionKey: fmt.Sprint("user-", k), Data: fmt.Appendf(nil, "%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			pendings = append(pendings, pd)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	aggregated := 0
	for _, pd := range pendings {
		r, ok := pd.Result()
		if !ok {
			t.Fatal("Close returned before a record had its result")
		}
		if r.Err != nil {
			t.Fatalf("put failed: %v", r.Err)
		}
		if r.Aggregated {
			aggregated++
		}
	}
	if aggregated == 0 {
		t.Fatal("the producer aggregated nothing")
	}

	store := memory.New()
	var (
		mu   sync.Mutex
		seen = map[string][]string{}
		n    int
	)
	run := func(want int) {
		t.Helper()
		runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		c, err := consumer.New(
			consumer.WithStream("agg"), consumer.WithKinesis(client), consumer.WithLeaseStore(store),
			consumer.WithInitialPosition(consumer.TrimHorizon()), consumer.WithIdleTime(20*time.Millisecond),
			consumer.WithFailoverTime(time.Second),
			consumer.WithHandler(func(ctx context.Context, recs []consumer.Record) error {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range recs {
					seen[r.PartitionKey] = append(seen[r.PartitionKey], string(r.Data))
					n++
				}
				if n >= want {
					cancel()
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
	}
	run(keys * perKey)
	if n != keys*perKey {
		t.Fatalf("consumed %d user records, want %d", n, keys*perKey)
	}
	for k := range keys {
		got := seen[fmt.Sprint("user-", k)]
		if len(got) != perKey {
			t.Fatalf("key %d: %d records, want %d", k, len(got), perKey)
		}
		for i, d := range got {
			if d != fmt.Sprint(i) {
				t.Fatalf("key %d: record %d is %s: order broken or duplicate", k, i, d)
			}
		}
	}

	// A graceful stop checkpointed everything: a new run sees nothing again.
	// Put one more record so the second run has something to end on.
	if _, err := admin.PutRecord(ctx, putInput("agg", "late", "x")); err != nil {
		t.Fatal(err)
	}
	before := n
	run(before + 1)
	if n != before+1 || seen["late"][0] != "x" {
		t.Fatalf("after a graceful restart %d records were delivered, want exactly the 1 new one", n-before)
	}
}

func putInput(stream, key, data string) *kinesis.PutRecordInput {
	return &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(key), Data: []byte(data)}
}
