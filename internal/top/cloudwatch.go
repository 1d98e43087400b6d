package top

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/internal/follow"
	"github.com/ksp-project/ksp/metrics"
)

// CloudWatchAPI is the part of *cloudwatch.Client the CloudWatch source
// uses.
type CloudWatchAPI interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// KinesisAPI is the part of *kinesis.Client the CloudWatch source uses to
// list streams and shards.
type KinesisAPI interface {
	follow.Client
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// CloudWatch reads the AWS/Kinesis metrics of Streams with GetMetricData:
// stream-level, and shard-level where the stream has enhanced monitoring
// (shards without datapoints show zero). Each rate is the Sum of the
// newest settled Period (one that ended at least Settle ago: CloudWatch
// publishes a period's datapoints a minute or two after it ends) divided by
// its length; iterator ages are its Maximum.
type CloudWatch struct {
	CW      CloudWatchAPI
	Kinesis KinesisAPI
	Streams []string
	// Period is the metrics' period (default 1 minute, the finest
	// CloudWatch keeps for Kinesis).
	Period time.Duration
	// Settle is how long after a period's end its datapoints are trusted
	// to be complete (default one Period).
	Settle time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// The metrics read per stream and per shard, with the statistic.
var (
	cwStream = []cwMetric{
		{metrics.IncomingRecords, "Sum"}, {metrics.IncomingBytes, "Sum"},
		{metrics.GetRecordsRecords, "Sum"}, {metrics.SubscribeToShardEventRecords, "Sum"},
		{metrics.WriteProvisionedThroughputExceeded, "Sum"}, {metrics.ReadProvisionedThroughputExceeded, "Sum"},
		{metrics.GetRecordsIteratorAge, "Maximum"},
	}
	cwShard = []cwMetric{
		{metrics.IncomingRecords, "Sum"}, {metrics.IncomingBytes, "Sum"}, {metrics.OutgoingRecords, "Sum"},
		{metrics.WriteProvisionedThroughputExceeded, "Sum"}, {metrics.ReadProvisionedThroughputExceeded, "Sum"},
		{metrics.IteratorAge, "Maximum"},
	}
)

type cwMetric struct{ name, stat string }

func (m cwMetric) gauge() bool { return m.stat == "Maximum" }

// maxQueries is GetMetricData's limit per call.
const maxQueries = 500

// Rates implements Source.
func (c *CloudWatch) Rates(ctx context.Context) (*metrics.Snapshot, error) {
	period := c.Period
	if period <= 0 {
		period = time.Minute
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	settle := c.Settle
	if settle <= 0 {
		settle = period
	}
	end := now().Add(-settle).Truncate(period)
	snap := &metrics.Snapshot{Time: end, Interval: period}
	type target struct {
		counters, gauges map[string]float64
		metric           cwMetric
	}
	var queries []cwtypes.MetricDataQuery
	targets := map[string]target{}
	add := func(dims []cwtypes.Dimension, ms []cwMetric, counters, gauges map[string]float64) {
		for _, m := range ms {
			id := fmt.Sprintf("q%d", len(queries))
			queries = append(queries, cwtypes.MetricDataQuery{
				Id: aws.String(id),
				MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String("AWS/Kinesis"), MetricName: aws.String(m.name), Dimensions: dims},
					Period: aws.Int32(int32(period.Seconds())), Stat: aws.String(m.stat),
				},
			})
			targets[id] = target{counters, gauges, m}
			if m.gauge() {
				gauges[m.name] = 0
			} else {
				counters[m.name] = 0
			}
		}
	}
	for _, name := range c.Streams {
		sum, err := c.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		shards, err := follow.Shards(ctx, c.Kinesis, name)
		if err != nil {
			return nil, err
		}
		d := sum.StreamDescriptionSummary
		sm := metrics.StreamMetrics{
			StreamName: name, StreamARN: aws.ToString(d.StreamARN), Mode: string(types.StreamModeProvisioned),
			OpenShards: int(aws.ToInt32(d.OpenShardCount)), Counters: map[string]float64{}, Gauges: map[string]float64{},
		}
		if d.StreamModeDetails != nil {
			sm.Mode = string(d.StreamModeDetails.StreamMode)
		}
		for _, sh := range shards {
			sm.Shards = append(sm.Shards, metrics.ShardMetrics{
				ShardID: aws.ToString(sh.ShardId), Open: sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil,
				Counters: map[string]float64{}, Gauges: map[string]float64{},
			})
		}
		snap.Streams = append(snap.Streams, sm)
	}
	// Maps are shared with snap, so the targets fill it in place.
	for i := range snap.Streams {
		sm := &snap.Streams[i]
		streamDim := cwtypes.Dimension{Name: aws.String("StreamName"), Value: aws.String(sm.StreamName)}
		add([]cwtypes.Dimension{streamDim}, cwStream, sm.Counters, sm.Gauges)
		for _, sh := range sm.Shards {
			add([]cwtypes.Dimension{streamDim, {Name: aws.String("ShardId"), Value: aws.String(sh.ShardID)}}, cwShard, sh.Counters, sh.Gauges)
		}
	}
	// The one settled period: each query has at most one datapoint.
	start := end.Add(-period)
	for len(queries) > 0 {
		batch := queries[:min(len(queries), maxQueries)]
		queries = queries[len(batch):]
		in := &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(start), EndTime: aws.Time(end), MetricDataQueries: batch,
		}
		for range 100 { // pages; bounded
			out, err := c.CW.GetMetricData(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("CloudWatch GetMetricData: %w", err)
			}
			for _, r := range out.MetricDataResults {
				t, ok := targets[aws.ToString(r.Id)]
				if !ok || len(r.Values) == 0 {
					continue
				}
				v := r.Values[0]
				if t.metric.gauge() {
					t.gauges[t.metric.name] = v
				} else {
					t.counters[t.metric.name] = v / period.Seconds()
				}
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	return snap, nil
}
