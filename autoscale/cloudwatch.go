package autoscale

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
	"github.com/ksp-project/ksp/metrics"
)

// CloudWatchAPI is the part of the aws-sdk-go-v2 CloudWatch client the
// CloudWatch source uses; *cloudwatch.Client satisfies it.
type CloudWatchAPI interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

var _ CloudWatchAPI = (*cloudwatch.Client)(nil)

// QueryProtocol makes a CloudWatch client speak the awsQuery protocol
// instead of the SDK's default Smithy RPCv2 CBOR, for endpoints that only
// know the older one (moto_server, LocalStack); AWS answers both.
func QueryProtocol(o *cloudwatch.Options) {
	o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
}

// CloudWatchSource measures a stream on AWS from its AWS/Kinesis metrics
// (IncomingBytes, IncomingRecords and WriteProvisionedThroughputExceeded,
// Sum per period) with GetMetricData. CloudWatch publishes them a minute or
// two late, so a period that ended just now may hold only part of its
// data: each Sample is the newest period that ended at least the settle
// delay ago (SettleDelay; one period by default), a metric without data in
// it counting zero (a stream without writes). A period already returned
// yields a Sample without interval (ignored by the scaler). Its OpenShards
// is 0: the scaler uses the stream's current count. It is safe for
// concurrent use.
type CloudWatchSource struct {
	client CloudWatchAPI
	period time.Duration
	settle time.Duration
	now    func() time.Time

	mu   sync.Mutex // guards: last
	last time.Time  // start of the newest period returned
}

// CloudWatchOption configures a CloudWatchSource.
type CloudWatchOption func(*CloudWatchSource)

// SettleDelay is how long after a period's end CloudWatch is trusted to
// hold all of its data; the source reads no period that ended more
// recently. Default (and with d 0 or less): one period. Raise it where
// datapoints arrive later.
func SettleDelay(d time.Duration) CloudWatchOption {
	return func(s *CloudWatchSource) {
		if d > 0 {
			s.settle = d
		}
	}
}

// NewCloudWatchSource measures through client over periods of period
// rounded up to whole minutes (CloudWatch's basic resolution; at least one).
func NewCloudWatchSource(client CloudWatchAPI, period time.Duration, opts ...CloudWatchOption) *CloudWatchSource {
	period = max(time.Minute, ((period+time.Minute-1)/time.Minute)*time.Minute)
	s := &CloudWatchSource{client: client, period: period, settle: period, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

var cloudWatchQueries = []struct{ id, metric string }{
	{"bytes", metrics.IncomingBytes},
	{"records", metrics.IncomingRecords},
	{"throttled", metrics.WriteProvisionedThroughputExceeded},
}

// Sample returns the stream's rates over the newest settled period.
func (s *CloudWatchSource) Sample(ctx context.Context, stream string) (Sample, error) {
	// Periods are aligned on multiples of their length: successive
	// samples never overlap.
	end := s.now().Add(-s.settle).Truncate(s.period)
	start := end.Add(-s.period)
	in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(start), EndTime: aws.Time(end)}
	for _, q := range cloudWatchQueries {
		in.MetricDataQueries = append(in.MetricDataQueries, cwtypes.MetricDataQuery{
			Id: aws.String(q.id),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String("AWS/Kinesis"), MetricName: aws.String(q.metric),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("StreamName"), Value: aws.String(stream)}}},
				Period: aws.Int32(int32(s.period / time.Second)), Stat: aws.String("Sum"),
			},
		})
	}
	// One period: each query has at most one datapoint, its Sum.
	sums := map[string]float64{}
	for page := 0; ; page++ {
		out, err := s.client.GetMetricData(ctx, in)
		if err != nil {
			return Sample{}, fmt.Errorf("autoscale: CloudWatch GetMetricData for stream %s: %w", stream, err)
		}
		for _, r := range out.MetricDataResults {
			for i, ts := range r.Timestamps {
				if i < len(r.Values) && !ts.Before(start) && ts.Before(end) {
					sums[aws.ToString(r.Id)] += r.Values[i]
				}
			}
		}
		if out.NextToken == nil || page >= 100 {
			break
		}
		in.NextToken = out.NextToken
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Sample{Time: end}
	if !start.After(s.last) {
		return out, nil // no new settled period since the last Sample
	}
	s.last = start
	secs := s.period.Seconds()
	out.Interval = s.period
	out.IncomingBytes = sums["bytes"] / secs
	out.IncomingRecords = sums["records"] / secs
	out.WriteThrottled = sums["throttled"] / secs
	return out, nil
}
