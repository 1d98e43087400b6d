package consumer

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/sdkhttp"
)

// fixKinesis wraps k so that every call carries sdkhttp.FixKinesis, the
// workaround for smithy-go's HTTP/1.1 bug that cuts responses (see package
// sdkhttp). The wrapper names each method, so a method added to KinesisAPI
// does not compile until it applies the fix too.
func fixKinesis(k KinesisAPI) KinesisAPI {
	if k == nil {
		return nil
	}
	if fo, ok := k.(FanOutAPI); ok {
		return fixedFanOut{fixedKinesis: fixedKinesis{api: k}, fo: fo}
	}
	if d, ok := k.(StreamDescriber); ok {
		return fixedDescriber{fixedKinesis: fixedKinesis{api: k}, d: d}
	}
	return fixedKinesis{api: k}
}

type fixedKinesis struct{ api KinesisAPI }

func withFix(optFns []func(*kinesis.Options)) []func(*kinesis.Options) {
	return append(optFns[:len(optFns):len(optFns)], sdkhttp.FixKinesis)
}

func (k fixedKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return k.api.ListShards(ctx, in, withFix(optFns)...)
}

func (k fixedKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return k.api.GetShardIterator(ctx, in, withFix(optFns)...)
}

// GetRecords carries sdkhttp.FastCodecs too: ksp's decoder of GetRecords
// answers, which reads them into pooled buffers.
func (k fixedKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	return k.api.GetRecords(ctx, in, append(optFns[:len(optFns):len(optFns)], sdkhttp.FixKinesis, sdkhttp.FastCodecs)...)
}

// fixedFanOut is fixedKinesis for a client that can also fan out.
type fixedFanOut struct {
	fixedKinesis
	fo FanOutAPI
}

func (k fixedFanOut) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return k.fo.DescribeStreamSummary(ctx, in, withFix(optFns)...)
}

func (k fixedFanOut) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	return k.fo.RegisterStreamConsumer(ctx, in, withFix(optFns)...)
}

func (k fixedFanOut) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	return k.fo.DescribeStreamConsumer(ctx, in, withFix(optFns)...)
}

// SubscribeToShard carries the fix too: without it, over HTTP/1.1 the SDK's
// closed request body ends the connection under the event stream.
func (k fixedFanOut) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	return k.fo.SubscribeToShard(ctx, in, withFix(optFns)...)
}

var _ FanOutAPI = fixedFanOut{}

// fixedDescriber is fixedKinesis for a client that can describe streams
// (multi-stream mode) but not fan out.
type fixedDescriber struct {
	fixedKinesis
	d StreamDescriber
}

func (k fixedDescriber) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return k.d.DescribeStreamSummary(ctx, in, withFix(optFns)...)
}

var _ StreamDescriber = fixedDescriber{}
