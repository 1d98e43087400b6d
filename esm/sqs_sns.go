package esm

import (
	"context"

	"github.com/ksp-project/ksp/sink"
)

// SQSAPI is the part of the aws-sdk-go-v2 SQS client SQSDestination uses;
// *sqs.Client satisfies it.
type SQSAPI = sink.SQSAPI

// SNSAPI is the part of the aws-sdk-go-v2 SNS client SNSDestination uses;
// *sns.Client satisfies it.
type SNSAPI = sink.SNSAPI

// SQSDestination sends each invocation record to an SQS queue as the
// message body, as Lambda does for an SQS on-failure destination.
type SQSDestination struct{ s *sink.SQS }

// NewSQSDestination sends to the queue at queueURL.
func NewSQSDestination(client SQSAPI, queueURL string) *SQSDestination {
	return &SQSDestination{s: sink.NewSQS(client, queueURL)}
}

// Deliver sends rec; it succeeds once SQS accepted the message.
func (d *SQSDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	return send(ctx, d.s, rec)
}

// SNSDestination publishes each invocation record to an SNS topic as the
// message, as Lambda does for an SNS on-failure destination.
type SNSDestination struct{ s *sink.SNS }

// NewSNSDestination publishes to the topic topicARN.
func NewSNSDestination(client SNSAPI, topicARN string) *SNSDestination {
	return &SNSDestination{s: sink.NewSNS(client, topicARN)}
}

// Deliver publishes rec; it succeeds once SNS accepted the message.
func (d *SNSDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	return send(ctx, d.s, rec)
}
