package esm

import (
	"context"
	"net/http"

	"github.com/ksp-project/ksp/sink"
)

// HTTPDestination POSTs each invocation record as application/json to a
// URL; any 2xx answer means delivered, anything else is retried.
type HTTPDestination struct{ s *sink.HTTP }

// NewHTTPDestination posts to url with client (nil: http.DefaultClient).
func NewHTTPDestination(client *http.Client, url string) *HTTPDestination {
	return &HTTPDestination{s: sink.NewHTTP(client, url)}
}

// Deliver posts rec.
func (d *HTTPDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	return send(ctx, d.s, rec)
}

// KinesisPutAPI is the part of the aws-sdk-go-v2 Kinesis client
// KinesisDestination uses; *kinesis.Client satisfies it.
type KinesisPutAPI = sink.KinesisPutAPI

// KinesisDestination puts each invocation record into a Kinesis stream (a
// ksp extension: Lambda has no Kinesis on-failure destination), partitioned
// by the failed batch's shard id so one shard's failures stay in order.
type KinesisDestination struct{ s *sink.Kinesis }

// NewKinesisDestination puts into the stream named stream.
func NewKinesisDestination(client KinesisPutAPI, stream string) *KinesisDestination {
	return &KinesisDestination{s: sink.NewKinesis(client, stream)}
}

// Deliver puts rec.
func (d *KinesisDestination) Deliver(ctx context.Context, rec InvocationRecord) error {
	return send(ctx, d.s, rec)
}
