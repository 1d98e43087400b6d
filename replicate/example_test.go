package replicate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/replicate"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// countdown stops the replication after n records were acknowledged.
type countdown struct {
	n    int
	stop context.CancelFunc
}

func (c *countdown) OnReplicationLag(string, time.Duration) {
	if c.n--; c.n == 0 {
		c.stop()
	}
}

// Replicate a stream from one ksp server to another (two regions, in
// production), then read the copy.
func ExampleRun() {
	ctx := context.Background()
	var clients []*kinesis.Client
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		srv, err := server.New(server.Options{Region: region})
		if err != nil {
			panic(err)
		}
		if err := srv.Start(); err != nil {
			panic(err)
		}
		defer srv.Close()
		c := servertest.NewClient(srv.URL(), region)
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)}); err != nil {
			panic(err)
		}
		if err := servertest.WaitActive(ctx, c, "orders"); err != nil {
			panic(err)
		}
		clients = append(clients, c)
	}
	useast, euwest := clients[0], clients[1]
	for _, order := range []string{"apples", "pears", "plums"} {
		if _, err := useast.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("customer-1"), Data: []byte(order)}); err != nil {
			panic(err)
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	err := replicate.Run(runCtx, replicate.Config{
		From: "orders", Source: useast,
		Leases: memory.New(), // lease/dynamo in production
		To:     "orders", Destination: euwest,
		Hooks: []replicate.Hook{&countdown{n: 3, stop: stop}},
	})
	if err != nil {
		panic(err)
	}

	it, err := euwest.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("orders"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		panic(err)
	}
	out, err := euwest.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		panic(err)
	}
	for _, r := range out.Records {
		for _, u := range aggregation.Deaggregate(nil, aggregation.KinesisRecord{Data: r.Data, PartitionKey: *r.PartitionKey}) {
			fmt.Printf("%s %s\n", u.PartitionKey, u.Data)
		}
	}
	// Output:
	// customer-1 apples
	// customer-1 pears
	// customer-1 plums
}
