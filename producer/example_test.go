package producer_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// Put a user's events under one partition key, aggregated, and read their
// results.
func Example() {
	srv, err := server.New(server.Options{})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx := context.Background()
	client := servertest.NewClient(srv.URL(), srv.Region())
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(2)}); err != nil {
		panic(err)
	}
	if err := servertest.WaitActive(ctx, client, "events"); err != nil {
		panic(err)
	}

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
