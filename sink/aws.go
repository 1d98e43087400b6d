package sink

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ksp-project/ksp/sdkhttp"
)

// SQSAPI is the part of the aws-sdk-go-v2 SQS client SQS uses; *sqs.Client
// satisfies it.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SNSAPI is the part of the aws-sdk-go-v2 SNS client SNS uses; *sns.Client
// satisfies it.
type SNSAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// KinesisPutAPI is the part of the aws-sdk-go-v2 Kinesis client Kinesis
// uses; *kinesis.Client satisfies it.
type KinesisPutAPI interface {
	PutRecord(ctx context.Context, in *kinesis.PutRecordInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordOutput, error)
}

var (
	_ SQSAPI        = (*sqs.Client)(nil)
	_ SNSAPI        = (*sns.Client)(nil)
	_ KinesisPutAPI = (*kinesis.Client)(nil)
)

// SQS sends each message's body as an SQS message.
type SQS struct {
	client   SQSAPI
	queueURL string
}

// NewSQS sends to the queue at queueURL.
func NewSQS(client SQSAPI, queueURL string) *SQS { return &SQS{client: client, queueURL: queueURL} }

// MaxSize is SQS's limit, 256 KiB.
func (s *SQS) MaxSize() int { return MaxSQSMessage }

// Send sends m; it succeeds once SQS accepted the message.
func (s *SQS) Send(ctx context.Context, m Message) error {
	if err := checkSize(s.queueURL, m, MaxSQSMessage); err != nil {
		return err
	}
	if _, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.queueURL), MessageBody: aws.String(string(m.Body))}); err != nil {
		return fmt.Errorf("sink: sending to %s: %w", s.queueURL, err)
	}
	return nil
}

// SNS publishes each message's body to an SNS topic.
type SNS struct {
	client   SNSAPI
	topicARN string
}

// NewSNS publishes to the topic topicARN.
func NewSNS(client SNSAPI, topicARN string) *SNS { return &SNS{client: client, topicARN: topicARN} }

// MaxSize is SNS's limit, 256 KiB.
func (s *SNS) MaxSize() int { return MaxSNSMessage }

// Send publishes m; it succeeds once SNS accepted the message.
func (s *SNS) Send(ctx context.Context, m Message) error {
	if err := checkSize(s.topicARN, m, MaxSNSMessage); err != nil {
		return err
	}
	if _, err := s.client.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(s.topicARN), Message: aws.String(string(m.Body))}); err != nil {
		return fmt.Errorf("sink: publishing to %s: %w", s.topicARN, err)
	}
	return nil
}

// Kinesis puts each message into a stream with one PutRecord call,
// partitioned by the message's Key (so one key's messages keep their
// order).
type Kinesis struct {
	client KinesisPutAPI
	stream string
}

// NewKinesis puts into the stream named stream.
func NewKinesis(client KinesisPutAPI, stream string) *Kinesis {
	return &Kinesis{client: client, stream: stream}
}

// MaxSize is a Kinesis record's default limit, 1 MiB less the longest
// partition key (256 bytes).
func (s *Kinesis) MaxSize() int { return MaxKinesisRecord - 256 }

// Send puts m; it succeeds once Kinesis acknowledged the record.
func (s *Kinesis) Send(ctx context.Context, m Message) error {
	if err := checkSize(s.stream, m, s.MaxSize()); err != nil {
		return err
	}
	if _, err := s.client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(s.stream),
		PartitionKey: aws.String(partitionKey(m.Key)), Data: m.Body}, sdkhttp.FixKinesis); err != nil {
		return fmt.Errorf("sink: putting into %s: %w", s.stream, err)
	}
	return nil
}

// partitionKey is m.Key, or a fixed key when it has none (Kinesis requires
// one).
func partitionKey(key string) string {
	if key == "" {
		return "sink"
	}
	return key
}
