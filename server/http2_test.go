package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestH2CPriorKnowledge talks HTTP/2 without TLS (prior knowledge) to the
// same port that serves HTTP/1.1, with a raw request and with the SDK.
func TestH2CPriorKnowledge(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	h2 := sdkhttp.NewH2C()

	req, _ := http.NewRequest("POST", srv.URL(), strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	resp, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("got %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}

	c := servertest.Client(t, srv, func(o *kinesis.Options) { o.HTTPClient = h2 })
	servertest.CreateStream(t, c, "h2", 1)
	if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("h2"), PartitionKey: aws.String("k"), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if got := servertest.ReadShard(t, c, "h2", "shardId-000000000000"); len(got) != 1 || string(got[0].Data) != "x" {
		t.Fatalf("read back %v over h2c", got)
	}
}
