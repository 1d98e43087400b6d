package esm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3API is the part of the aws-sdk-go-v2 S3 client S3Destination uses;
// *s3.Client satisfies it.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// S3Destination writes each invocation record to an S3 bucket as one JSON
// object, as Lambda does for an S3 on-failure destination: unlike SQS and
// SNS, the object also carries the batch's whole event under "payload", so
// the records' data outlives the stream's retention. The object key is
// Lambda's: aws/lambda/MAPPING/SHARD/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-UUID,
// with the record's timestamp.
type S3Destination struct {
	client    S3API
	bucket    string
	mappingID string
}

// NewS3Destination writes to bucket. mappingID stands for the event source
// mapping's UUID in the keys (ksp esm uses its lease table's name).
func NewS3Destination(client S3API, bucket, mappingID string) *S3Destination {
	return &S3Destination{client: client, bucket: bucket, mappingID: mappingID}
}

// s3Object is the object's JSON: the invocation record and its event.
type s3Object struct {
	InvocationRecord
	Payload events.KinesisEvent `json:"payload"`
}

// Deliver writes rec's object; it succeeds once S3 stored it.
func (d *S3Destination) Deliver(ctx context.Context, rec InvocationRecord) error {
	body, err := json.Marshal(s3Object{InvocationRecord: rec, Payload: rec.Event})
	if err != nil {
		return fmt.Errorf("esm: encoding invocation record: %w", err)
	}
	key, err := d.key(rec)
	if err != nil {
		return err
	}
	if _, err := d.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json")}); err != nil {
		return fmt.Errorf("esm: writing the invocation record to s3://%s/%s: %w", d.bucket, key, err)
	}
	return nil
}

// key is Lambda's object key for rec.
func (d *S3Destination) key(rec InvocationRecord) (string, error) {
	at, err := time.Parse(lambdaTimeLayout, rec.Timestamp)
	if err != nil {
		return "", fmt.Errorf("esm: invocation record timestamp %q: %w", rec.Timestamp, err)
	}
	return fmt.Sprintf("aws/lambda/%s/%s/%s/%s-%s", d.mappingID, rec.KinesisBatchInfo.ShardID,
		at.Format("2006/01/02"), at.Format("2006-01-02T15.04.05"), requestID()), nil
}
