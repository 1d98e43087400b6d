package server_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestLargeGetRecordsResponse reads a 6 MB answer, which the server streams
// in pieces after its Content-Length, over h2c and over HTTP/1.1.
func TestLargeGetRecordsResponse(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	ctx := context.Background()
	h2 := servertest.Client(t, srv, servertest.NoRetries)
	servertest.CreateStream(t, h2, "big", 1)
	const n, size = 2000, 3000
	for b := 0; b < n; b += 500 {
		var entries []types.PutRecordsRequestEntry
		for i := b; i < b+500; i++ {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k\"", i)), Data: bytes.Repeat([]byte{byte(i)}, size)})
		}
		if _, err := h2.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("big"), Records: entries}); err != nil {
			t.Fatal(err)
		}
	}
	h1 := servertest.NewClient(srv.URL(), srv.Region(), servertest.NoRetries)
	for name, c := range map[string]*kinesis.Client{"h2c": h2, "http1.1": h1} {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("big"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(out.Records) != n || out.NextShardIterator == nil {
			t.Fatalf("%s: %d records in one answer, want %d", name, len(out.Records), n)
		}
		for i, r := range out.Records {
			if aws.ToString(r.PartitionKey) != fmt.Sprint("k\"", i) || !bytes.Equal(r.Data, bytes.Repeat([]byte{byte(i)}, size)) {
				t.Fatalf("%s: record %d differs", name, i)
			}
		}
	}
}
