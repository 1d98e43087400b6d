package producer_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ksp-project/ksp/breaker"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
)

// A breaker opens when every PutRecords of the last second failed (here the
// server fails them on purpose); Put then fails fast, and once Kinesis
// answers again a probe closes the breaker and the waiting record is put.
func ExampleWithBreaker() {
	ctx := context.Background()
	srv, client := exampleStream(ctx, server.Options{Faults: server.Faults{ErrorRate: map[string]float64{"PutRecords": 1}}}, "events", 1)
	defer srv.Close()

	opened := make(chan struct{}, 1)
	b, err := breaker.New(breaker.Name("kinesis"), breaker.ConsecutiveFailures(0), breaker.FailureRate(1, 3),
		breaker.Window(time.Second), breaker.OpenFor(100*time.Millisecond),
		breaker.OnStateChange(func(c breaker.Change) {
			if c.To == breaker.Open {
				select {
				case opened <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		panic(err)
	}
	p, err := producer.New(client, "events", producer.WithBreaker(b), producer.RetryBackoff(10*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)
	waiting, err := p.Put(ctx, producer.Record{PartitionKey: "user-42", Data: []byte("login")})
	if err != nil {
		panic(err)
	}
	<-opened // three failed attempts at it opened the breaker

	_, err = p.Put(ctx, producer.Record{PartitionKey: "user-42", Data: []byte("view")})
	fmt.Println("while open:", errors.Is(err, producer.ErrUnavailable), errors.Is(err, breaker.ErrOpen))

	if err := srv.SetFaults(server.Faults{}); err != nil { // Kinesis recovers
		panic(err)
	}
	res, err := waiting.Wait(ctx)
	fmt.Println("buffered record:", err, res.Attempts > 3)
	fmt.Println("breaker:", b.State())
	// Output:
	// while open: true true
	// buffered record: <nil> true
	// breaker: closed
}
