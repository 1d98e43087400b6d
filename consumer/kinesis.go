package consumer

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisAPI is the part of the aws-sdk-go-v2 Kinesis client the consumer
// uses; *kinesis.Client satisfies it.
type KinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// listShards returns every shard of the stream, open and closed, following
// NextToken. It gives up after 1000 pages rather than loop forever on a
// misbehaving endpoint.
func listShards(ctx context.Context, k KinesisAPI, stream string) ([]types.Shard, error) {
	var out []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for range 1000 {
		page, err := k.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("consumer: listing shards of %s: %w", stream, err)
		}
		out = append(out, page.Shards...)
		if page.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	return nil, fmt.Errorf("consumer: listing shards of %s: more than 1000 pages", stream)
}
