package consumer_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// A simple handler consumes a stream on the embedded server: each batch is
// checkpointed once the handler returns nil.
func Example() {
	srv, err := server.New(server.Options{})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	client := kinesis.New(kinesis.Options{
		Region: srv.Region(), BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("ksp", "ksp", ""),
		HTTPClient:  sdkhttp.NewH2C(),
	})
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)}); err != nil {
		panic(err)
	}
	if err := servertest.WaitActive(ctx, client, "orders"); err != nil {
		panic(err)
	}
	for _, order := range []string{"apples", "pears", "plums"} {
		if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("customer-1"), Data: []byte(order)}); err != nil {
			panic(err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	seen := 0
	c, err := consumer.New(
		consumer.WithStream("orders"),
		consumer.WithKinesis(client),
		consumer.WithLeaseStore(memory.New()), // lease/dynamo in production
		consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithHandler(func(ctx context.Context, records []consumer.Record) error {
			for _, r := range records {
				fmt.Printf("%s %s\n", r.PartitionKey, r.Data)
			}
			if seen += len(records); seen == 3 {
				cancel() // Run checkpoints, releases its lease and returns
			}
			return nil
		}),
	)
	if err != nil {
		panic(err)
	}
	if err := c.Run(ctx); err != nil {
		panic(err)
	}
	// Output:
	// customer-1 apples
	// customer-1 pears
	// customer-1 plums
}
