package producer_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestConcurrentProducersPerTransport runs 8 producers at once, each with
// its own client, over h2c, HTTP/1.1, and HTTP/1.1 connections that expose
// smithy-go's HTTP/1.1 bug on every request through clients without ksp's
// workaround (the producer applies it to each call): every record gets a
// successful result and is in the stream exactly once.
func TestConcurrentProducersPerTransport(t *testing.T) {
	const producers, each = 8, 500
	for _, tr := range servertest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			srv := servertest.Start(t, server.Options{DisableLimits: true})
			servertest.CreateStream(t, servertest.Client(t, srv), "tr", 4)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			var wg sync.WaitGroup
			for w := range producers {
				wg.Go(func() {
					p, err := producer.New(tr.Client(t, srv), "tr", producer.Aggregation(false), producer.RateLimit(0))
					if err != nil {
						t.Error(err)
						return
					}
					var pending []*producer.Pending
					for i := range each {
						id := uint64(w*each + i)
						pd, err := p.Put(ctx, producer.Record{PartitionKey: strconv.FormatUint(id, 10), Data: idData(id, 64)})
						if err != nil {
							t.Errorf("Put %d: %v", id, err)
							break
						}
						pending = append(pending, pd)
					}
					if err := p.Close(ctx); err != nil {
						t.Errorf("Close: %v", err)
					}
					for _, pd := range pending {
						if r, ok := pd.Result(); !ok || r.Err != nil {
							t.Errorf("record without a successful result (%v, %v)", ok, r.Err)
							return
						}
					}
				})
			}
			wg.Wait()
			if !t.Failed() {
				checkOnce(t, readAll(t, servertest.Client(t, srv), "tr"), producers*each)
			}
		})
	}
}
