package esm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// HTTPDestination POSTs each invocation record as application/json to a
// URL; any 2xx answer means delivered, anything else is retried.
type HTTPDestination struct {
	client *http.Client
	url    string
}

// NewHTTPDestination posts to url with client (nil: http.DefaultClient).
func NewHTTPDestination(client *http.Client, url string) *HTTPDestination {
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTPDestination{client: client, url: url}
}

// Deliver posts rec.
func (d *HTTPDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	body, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader([]byte(*body)))
	if err != nil {
		return fmt.Errorf("esm: on-failure request to %s: %w", d.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("esm: posting the invocation record to %s: %w", d.url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("esm: posting the invocation record to %s: %s", d.url, resp.Status)
	}
	return nil
}

// KinesisPutAPI is the part of the aws-sdk-go-v2 Kinesis client
// KinesisDestination uses; *kinesis.Client satisfies it.
type KinesisPutAPI interface {
	PutRecord(ctx context.Context, in *kinesis.PutRecordInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordOutput, error)
}

// KinesisDestination puts each invocation record into a Kinesis stream (a
// ksp extension: Lambda has no Kinesis on-failure destination), partitioned
// by the failed batch's shard id so one shard's failures stay in order.
type KinesisDestination struct {
	client KinesisPutAPI
	stream string
}

// NewKinesisDestination puts into the stream named stream.
func NewKinesisDestination(client KinesisPutAPI, stream string) *KinesisDestination {
	return &KinesisDestination{client: client, stream: stream}
}

// Deliver puts rec.
func (d *KinesisDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	body, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if _, err := d.client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(d.stream),
		PartitionKey: aws.String(rec.KinesisBatchInfo.ShardID), Data: []byte(*body)}); err != nil {
		return fmt.Errorf("esm: putting the invocation record into %s: %w", d.stream, err)
	}
	return nil
}
