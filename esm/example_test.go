package esm_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/esm"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// plumsFailed makes handleOrders fail once on plums, to show a retry.
var plumsFailed bool

// handleOrders is a Lambda function: in production its main is
// lambda.Start(handleOrders); locally esm.Run drives it the same way.
func handleOrders(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var resp events.KinesisEventResponse
	for _, r := range ev.Records {
		if string(r.Kinesis.Data) == "plums" && !plumsFailed {
			plumsFailed = true
			fmt.Println("failed", string(r.Kinesis.Data))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
			return resp, nil // Lambda retries from plums
		}
		fmt.Println("handled", string(r.Kinesis.Data), "from", r.EventSource)
	}
	return resp, nil
}

// Example runs a Lambda handler over a stream of the embedded server with
// Lambda's partial batch responses.
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
	for _, order := range []string{"apples", "plums", "pears"} {
		if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("customer-1"), Data: []byte(order)}); err != nil {
			panic(err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = esm.Run(ctx, esm.Config{
		Stream:                "orders",
		Kinesis:               client,
		LeaseStore:            memory.New(), // lease/dynamo or lease/sqlite to keep checkpoints
		StartingPosition:      esm.TrimHorizon,
		FunctionResponseTypes: []string{esm.ReportBatchItemFailures},
	}, func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		resp, err := handleOrders(ctx, ev)
		if last := ev.Records[len(ev.Records)-1]; string(last.Kinesis.Data) == "pears" && len(resp.BatchItemFailures) == 0 {
			cancel() // everything handled: Run checkpoints and returns
		}
		return resp, err
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// handled apples from aws:kinesis
	// failed plums
	// handled plums from aws:kinesis
	// handled pears from aws:kinesis
}
