package producer_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// Put a user's events under one partition key, aggregated, and read their
// results.
func Example() {
	ctx := context.Background()
	srv, client := exampleStream(ctx, server.Options{}, "events", 2)
	defer srv.Close()

	p, err := producer.New(client, "events")
	if err != nil {
		panic(err)
	}
	key := producer.HashedKey("user-42")
	var handles []*producer.Pending
	for _, event := range []string{"login", "view", "buy"} {
		h, err := p.Put(ctx, producer.Record{PartitionKey: key, Data: []byte(event)})
		if err != nil {
			panic(err)
		}
		handles = append(handles, h)
	}
	if err := p.Close(ctx); err != nil { // flushes
		panic(err)
	}
	for _, h := range handles {
		res, err := h.Wait(ctx)
		fmt.Println(res.ShardID, res.SubSequenceNumber, res.Aggregated, res.Attempts, err)
	}
	// Output:
	// shardId-000000000001 0 true 1 <nil>
	// shardId-000000000001 1 true 1 <nil>
	// shardId-000000000001 2 true 1 <nil>
}

// Put many records without a handle each: a callback receives every
// record's result, once.
func ExampleProducer_PutCallback() {
	ctx := context.Background()
	srv, client := exampleStream(ctx, server.Options{}, "clicks", 2)
	defer srv.Close()

	p, err := producer.New(client, "clicks")
	if err != nil {
		panic(err)
	}
	var put, failed atomic.Int64
	done := func(res producer.Result) { // runs on the producer's goroutines
		if res.Err != nil {
			failed.Add(1)
			return
		}
		put.Add(1)
	}
	for i := range 10000 {
		rec := producer.Record{PartitionKey: producer.HashedKey(strconv.Itoa(i % 100)), Data: []byte("click")}
		if err := p.PutCallback(ctx, rec, done); err != nil {
			panic(err) // refused: done will not be called for it
		}
	}
	if err := p.Close(ctx); err != nil { // flushes; every callback has run when it returns
		panic(err)
	}
	fmt.Println(put.Load(), failed.Load())
	// Output:
	// 10000 0
}

// exampleStream starts a server with opts and creates a stream of n shards
// in it, and returns the server and a client of it.
func exampleStream(ctx context.Context, opts server.Options, name string, n int32) (*server.Server, *kinesis.Client) {
	srv, err := server.New(opts)
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	client := servertest.NewClient(srv.URL(), srv.Region())
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(n)}); err != nil {
		panic(err)
	}
	if err := servertest.WaitActive(ctx, client, name); err != nil {
		panic(err)
	}
	return srv, client
}
