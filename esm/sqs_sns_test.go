package esm

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server/servertest"
)

// receiveOne waits for one message on the queue and returns its body.
func receiveOne(t *testing.T, client *sqs.Client, queueURL string) string {
	t.Helper()
	for range 20 {
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 1 {
			t.Fatalf("%d messages, want 1", len(out.Messages))
		}
		if len(out.Messages) == 1 {
			return aws.ToString(out.Messages[0].Body)
		}
	}
	t.Fatal("no message arrived")
	return ""
}

// expectDelivered checks the record that reached SQS or SNS against the
// one the runner delivered, field by field, and the documented shape.
func expectDelivered(t *testing.T, s *stream, body string) {
	t.Helper()
	var rec InvocationRecord
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	expectRecord(t, rec, InvocationRecord{
		RequestContext:   RequestContext{FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:ksp-esm", Condition: RetryAttemptsExhausted, ApproximateInvokeCount: 1},
		ResponseContext:  ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:          "1.0",
		Timestamp:        rec.Timestamp,
		KinesisBatchInfo: s.batchInfo(0, 1, 2),
	})
}

func TestOnFailureToSQSSNSAndS3(t *testing.T) {
	moto := peers.StartMoto(t)
	cfg := servertest.Config("us-east-1")
	sqsClient := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(moto) })
	snsClient := sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(moto) })
	ctx := t.Context()
	queue := func(name string) (url, arn string) {
		q, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(q.QueueUrl), attrs.Attributes["QueueArn"]
	}

	t.Run("SQS", func(t *testing.T) {
		url, _ := queue("esm-failures")
		s := newStream(t, 2)
		c := s.config()
		c.MaximumRetryAttempts = Int(0)
		c.OnFailure = NewSQSDestination(sqsClient, url)
		got := run(s, c, failing(s, -1, "r0"))
		expectLog(t, got, "invoke r0,r1", "checkpoint r1")
		expectDelivered(t, s, receiveOne(t, sqsClient, url))
	})
	t.Run("SNS", func(t *testing.T) {
		url, arn := queue("esm-topic-subscriber")
		topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("esm-failures")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(arn),
			Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
			t.Fatal(err)
		}
		s := newStream(t, 2)
		c := s.config()
		c.MaximumRetryAttempts = Int(0)
		c.OnFailure = NewSNSDestination(snsClient, aws.ToString(topic.TopicArn))
		got := run(s, c, failing(s, -1, "r0"))
		expectLog(t, got, "invoke r0,r1", "checkpoint r1")
		expectDelivered(t, s, receiveOne(t, sqsClient, url))
	})
	t.Run("S3", func(t *testing.T) {
		s3Client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(moto); o.UsePathStyle = true })
		if _, err := s3Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("esm-failures")}); err != nil {
			t.Fatal(err)
		}
		s := newStream(t, 2)
		c := s.config()
		c.MaximumRetryAttempts = Int(0)
		c.OnFailure = NewS3Destination(s3Client, "esm-failures", "ksp-esm-s")
		got := run(s, c, failing(s, -1, "r0"))
		expectLog(t, got, "invoke r0,r1", "checkpoint r1")

		list, err := s3Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("esm-failures")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Contents) != 1 {
			t.Fatalf("%d objects in the bucket, want 1", len(list.Contents))
		}
		key := aws.ToString(list.Contents[0].Key)
		obj, err := s3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("esm-failures"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Body.Close()
		body, err := io.ReadAll(obj.Body)
		if err != nil {
			t.Fatal(err)
		}
		expectDelivered(t, s, string(body))
		// Lambda's key: aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>,
		// at the record's timestamp.
		var withPayload struct {
			Timestamp string
			Payload   events.KinesisEvent
		}
		var raw struct{ Payload map[string]json.RawMessage }
		if err := json.Unmarshal(body, &withPayload); err != nil || json.Unmarshal(body, &raw) != nil {
			t.Fatalf("%v: %s", err, body)
		}
		at, err := time.Parse(lambdaTimeLayout, withPayload.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		prefix := "aws/lambda/ksp-esm-s/shardId-000000000000/" + at.Format("2006/01/02/2006-01-02T15.04.05") + "-"
		if id, ok := strings.CutPrefix(key, prefix); !ok || !uuidRE.MatchString(id) {
			t.Fatalf("object key %s, want %s<UUID>", key, prefix)
		}
		// The payload is the batch's event, as the function got it.
		if len(raw.Payload) != 1 || len(withPayload.Payload.Records) != 2 {
			t.Fatalf("payload of %s, want {\"Records\": the 2 records}", body)
		}
		for i, got := range withPayload.Payload.Records {
			if got.EventID != "shardId-000000000000:"+s.seqs[i] || string(got.Kinesis.Data) != fmt.Sprint("r", i) || got.EventSourceArn != s.arn ||
				!got.Kinesis.ApproximateArrivalTimestamp.Round(time.Millisecond).Equal(s.arrival[s.seqs[i]].Truncate(time.Millisecond)) {
				t.Fatalf("payload record %d: %+v", i, got)
			}
		}
	})
}
