package esm

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSAPI is the part of the aws-sdk-go-v2 SQS client SQSDestination uses;
// *sqs.Client satisfies it.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SNSAPI is the part of the aws-sdk-go-v2 SNS client SNSDestination uses;
// *sns.Client satisfies it.
type SNSAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var (
	_ SQSAPI = (*sqs.Client)(nil)
	_ SNSAPI = (*sns.Client)(nil)
)

// SQSDestination sends each invocation record to an SQS queue as the
// message body, as Lambda does for an SQS on-failure destination.
type SQSDestination struct {
	client   SQSAPI
	queueURL string
}

// NewSQSDestination sends to the queue at queueURL.
func NewSQSDestination(client SQSAPI, queueURL string) *SQSDestination {
	return &SQSDestination{client: client, queueURL: queueURL}
}

// Deliver sends rec; it succeeds once SQS accepted the message.
func (d *SQSDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	body, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if _, err := d.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(d.queueURL), MessageBody: body}); err != nil {
		return fmt.Errorf("esm: sending the invocation record to %s: %w", d.queueURL, err)
	}
	return nil
}

// SNSDestination publishes each invocation record to an SNS topic as the
// message, as Lambda does for an SNS on-failure destination.
type SNSDestination struct {
	client   SNSAPI
	topicARN string
}

// NewSNSDestination publishes to the topic topicARN.
func NewSNSDestination(client SNSAPI, topicARN string) *SNSDestination {
	return &SNSDestination{client: client, topicARN: topicARN}
}

// Deliver publishes rec; it succeeds once SNS accepted the message.
func (d *SNSDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	body, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if _, err := d.client.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(d.topicARN), Message: body}); err != nil {
		return fmt.Errorf("esm: publishing the invocation record to %s: %w", d.topicARN, err)
	}
	return nil
}

// encodeRecord is the message body Lambda sends: the record's JSON.
func encodeRecord(rec InvocationRecord) (*string, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("esm: encoding invocation record: %w", err)
	}
	return aws.String(string(body)), nil
}
