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
// two late: each Sample is the newest complete period, and a period already
// returned yields a Sample without interval (ignored by the scaler). Its
// OpenShards is 0: the scaler uses the stream's current count. It is safe
// for concurrent use.
type CloudWatchSource struct {
	client CloudWatchAPI
	period time.Duration
	now    func() time.Time

	mu   sync.Mutex // guards: last
	last time.Time  // start of the newest period returned
}

// NewCloudWatchSource measures through client over periods of period
// rounded up to whole minutes (CloudWatch's basic resolution; at least one).
func NewCloudWatchSource(client CloudWatchAPI, period time.Duration) *CloudWatchSource {
	period = max(time.Minute, ((period+time.Minute-1)/time.Minute)*time.Minute)
	return &CloudWatchSource{client: client, period: period, now: time.Now}
}

var cloudWatchQueries = []struct{ id, metric string }{
	{"bytes", metrics.IncomingBytes},
	{"records", metrics.IncomingRecords},
	{"throttled", metrics.WriteProvisionedThroughputExceeded},
}

// Sample returns the stream's rates over the newest complete period of the
// last 15 minutes.
func (s *CloudWatchSource) Sample(ctx context.Context, stream string) (Sample, error) {
	end := s.now().Truncate(time.Minute)
	in := &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(end.Add(-15 * time.Minute)), EndTime: aws.Time(end),
		ScanBy: cwtypes.ScanByTimestampDescending,
	}
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
	sums := map[string]map[time.Time]float64{}
	for page := 0; ; page++ {
		out, err := s.client.GetMetricData(ctx, in)
		if err != nil {
			return Sample{}, fmt.Errorf("autoscale: CloudWatch GetMetricData for stream %s: %w", stream, err)
		}
		for _, r := range out.MetricDataResults {
			id := aws.ToString(r.Id)
			if sums[id] == nil {
				sums[id] = map[time.Time]float64{}
			}
			for i, ts := range r.Timestamps {
				if i < len(r.Values) {
					sums[id][ts.UTC()] += r.Values[i]
				}
			}
		}
		if out.NextToken == nil || page >= 100 {
			break
		}
		in.NextToken = out.NextToken
	}
	// The newest period with incoming data; a stream without writes has
	// none, which is a zero load over the newest complete period.
	var newest time.Time
	for ts := range sums["records"] {
		if ts.After(newest) {
			newest = ts
		}
	}
	if newest.IsZero() {
		newest = end.Add(-s.period)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Sample{Time: newest.Add(s.period)}
	if !newest.After(s.last) {
		return out, nil // no new period since the last Sample
	}
	s.last = newest
	secs := s.period.Seconds()
	out.Interval = s.period
	out.IncomingBytes = sums["bytes"][newest] / secs
	out.IncomingRecords = sums["records"][newest] / secs
	out.WriteThrottled = sums["throttled"][newest] / secs
	return out, nil
}
