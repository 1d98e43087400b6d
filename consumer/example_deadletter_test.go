package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	kspsink "github.com/ksp-project/ksp/sink"
)

// A record handler that keeps failing on one record has it dead-lettered
// after two attempts (here to a function; sink.OpenFile, sink.NewSQS,
// sink.NewProducer... in production), and the shard moves on.
func ExampleWithDeadLetter() {
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
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("fruit"), ShardCount: aws.Int32(1)}); err != nil {
		panic(err)
	}
	if err := servertest.WaitActive(ctx, client, "fruit"); err != nil {
		panic(err)
	}
	for _, f := range []string{"apples", "rotten", "plums"} {
		if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("fruit"), PartitionKey: aws.String("crate-1"), Data: []byte(f)}); err != nil {
			panic(err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	deadLetters := kspsink.Func(func(_ context.Context, m kspsink.Message) error {
		var e consumer.DeadLetter
		if err := json.Unmarshal(m.Body, &e); err != nil {
			return err
		}
		fmt.Printf("dead-lettered %s (key %s) after %d attempts: %s\n", e.Data, e.PartitionKey, e.Attempts, e.LastError)
		return nil
	})
	c, err := consumer.New(
		consumer.WithStream("fruit"),
		consumer.WithKinesis(client),
		consumer.WithLeaseStore(memory.New()),
		consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithIdleTime(20*time.Millisecond),
		consumer.WithMaxRetryBackoff(50*time.Millisecond),
		consumer.WithRecordHandler(func(ctx context.Context, r consumer.Record) error {
			if string(r.Data) == "rotten" {
				return errors.New("rotten fruit")
			}
			fmt.Printf("processed %s\n", r.Data)
			if string(r.Data) == "plums" {
				cancel()
			}
			return nil
		}),
		consumer.WithDeadLetter(deadLetters, 2),
	)
	if err != nil {
		panic(err)
	}
	if err := c.Run(ctx); err != nil {
		panic(err)
	}
	// Output:
	// processed apples
	// dead-lettered rotten (key crate-1) after 2 attempts: rotten fruit
	// processed plums
}
