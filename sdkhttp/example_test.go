package sdkhttp_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// A client of your own with ksp's codecs for PutRecords and GetRecords;
// every other call, and every error, is the SDK's as before.
func ExampleFastCodecs() {
	srv, err := server.New(server.Options{})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx := context.Background()
	client := servertest.NewClient(srv.URL(), srv.Region(), sdkhttp.FastCodecs)
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(1)}); err != nil {
		panic(err)
	}
	if err := servertest.WaitActive(ctx, client, "events"); err != nil {
		panic(err)
	}
	if _, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: []types.PutRecordsRequestEntry{
		{Data: []byte("hello"), PartitionKey: aws.String("a")},
		{Data: []byte("world"), PartitionKey: aws.String("b")},
	}}); err != nil {
		panic(err)
	}
	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		panic(err)
	}
	out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		panic(err)
	}
	for _, r := range out.Records {
		fmt.Printf("%s %s\n", aws.ToString(r.PartitionKey), r.Data)
	}
	// Output:
	// a hello
	// b world
}
