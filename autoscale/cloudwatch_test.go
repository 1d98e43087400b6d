package autoscale

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/ksp-project/ksp/internal/peers"
)

// TestCloudWatchSource puts AWS/Kinesis metric data for two minutes into
// moto_server and reads it back as per-second rates, a minute at a time:
// a minute is read only once it ended a settle delay (a minute) ago, so a
// minute CloudWatch may still be filling is never read; asked again before
// a newer minute settled, the source returns a sample without interval; a
// settled minute without data is a zero load.
func TestCloudWatchSource(t *testing.T) {
	url := peers.StartMoto(t)
	client := cloudwatch.New(cloudwatch.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("ksp", "ksp", ""),
	}, QueryProtocol)
	ctx := context.Background()
	minute := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	put := func(at time.Time, name string, v float64) {
		t.Helper()
		if _, err := client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/Kinesis"),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String(name), Timestamp: aws.Time(at.Add(10 * time.Second)), Value: aws.Float64(v),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("StreamName"), Value: aws.String("orders")}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	put(minute, "IncomingBytes", 6e6)
	put(minute, "IncomingRecords", 6000)
	put(minute.Add(time.Minute), "IncomingBytes", 30e6)
	put(minute.Add(time.Minute), "IncomingRecords", 60000)
	put(minute.Add(time.Minute), "WriteProvisionedThroughputExceeded", 1200)
	put(minute.Add(time.Minute), "IncomingBytes", 30e6) // two data points in one minute add up
	put(minute.Add(time.Minute), "IncomingRecords", 60000)
	s := NewCloudWatchSource(client, time.Minute)
	sample := func(now time.Time, want Sample) {
		t.Helper()
		s.now = func() time.Time { return now }
		got, err := s.Sample(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(want.Time) || got.Interval != want.Interval || got.IncomingBytes != want.IncomingBytes ||
			got.IncomingRecords != want.IncomingRecords || got.WriteThrottled != want.WriteThrottled {
			t.Fatalf("at %v: got %+v; want %+v", now, got, want)
		}
	}
	// The second minute ended 30 s ago: not settled; the first is read.
	sample(minute.Add(2*time.Minute+30*time.Second), Sample{Time: minute.Add(time.Minute), Interval: time.Minute, IncomingBytes: 1e5, IncomingRecords: 100})
	sample(minute.Add(3*time.Minute), Sample{Time: minute.Add(2 * time.Minute), Interval: time.Minute, IncomingBytes: 1e6, IncomingRecords: 2000, WriteThrottled: 20})
	sample(minute.Add(3*time.Minute+59*time.Second), Sample{Time: minute.Add(2 * time.Minute)})         // the same minute again
	sample(minute.Add(4*time.Minute), Sample{Time: minute.Add(3 * time.Minute), Interval: time.Minute}) // no writes
}
