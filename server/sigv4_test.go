package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestSigV4(t *testing.T) {
	srv := servertest.Start(t, server.Options{Credentials: map[string]string{"AKIDKSP": "s3cret"}})
	ctx := context.Background()
	withCreds := func(id, secret string) func(*kinesis.Options) {
		return func(o *kinesis.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
		}
	}

	// The SDK's own signing is accepted, over h2c and over HTTP/1.1.
	c := servertest.Client(t, srv, servertest.NoRetries, withCreds("AKIDKSP", "s3cret"))
	servertest.CreateStream(t, c, "signed", 1)
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("signed"), Data: []byte("x"), PartitionKey: aws.String("k y  z")}); err != nil {
		t.Fatalf("signed PutRecord: %v", err)
	}
	c11 := servertest.NewClient(srv.URL(), srv.Region(), servertest.NoRetries, withCreds("AKIDKSP", "s3cret"))
	if _, err := c11.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("signed ListStreams over HTTP/1.1: %v", err)
	}
	// A client configured for another region signs for it; that is accepted.
	other := servertest.NewClient(srv.URL(), "eu-west-3", servertest.NoRetries, withCreds("AKIDKSP", "s3cret"))
	if _, err := other.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("ListStreams signed for eu-west-3: %v", err)
	}

	_, err := servertest.Client(t, srv, servertest.NoRetries, withCreds("AKIDKSP", "wrong")).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantCode(t, err, kds.ErrCodeInvalidSignature, "The request signature we calculated does not match")
	_, err = servertest.Client(t, srv, servertest.NoRetries, withCreds("AKIDOTHER", "s3cret")).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantCode(t, err, kds.ErrCodeUnrecognizedClient, "security token included in the request is invalid")

	body := []byte(`{"StreamName":"signed"}`)
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: "AKIDKSP", SecretAccessKey: "s3cret"}
	request := func(body []byte) *http.Request {
		req, err := http.NewRequest(http.MethodPost, srv.URL(), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.DescribeStreamSummary")
		return req
	}
	sign := func(req *http.Request, body []byte, at time.Time) {
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
	}
	send := func(req *http.Request) (int, string, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb.Type, eb.Message
	}
	check := func(name string, req *http.Request, wantType, wantMsg string) {
		t.Helper()
		status, typ, msg := send(req)
		if typ != wantType || !strings.Contains(msg, wantMsg) {
			t.Errorf("%s: got %d %s %q, want %s containing %q", name, status, typ, msg, wantType, wantMsg)
		}
	}

	req := request(body)
	sign(req, body, time.Now())
	if status, typ, msg := send(req); status != http.StatusOK {
		t.Fatalf("raw signed request: %d %s %s", status, typ, msg)
	}

	req = request([]byte(`{"StreamName":"other"}`))
	sign(req, body, time.Now()) // signed for another body
	check("tampered body", req, kds.ErrCodeInvalidSignature, "signature we calculated does not match")

	req = request([]byte(`{"StreamName":"other"}`))
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:])) // signed, for another body
	sign(req, body, time.Now())
	check("content hash mismatch", req, kds.ErrCodeInvalidSignature, "x-amz-content-sha256")

	req = request(body)
	sign(req, body, time.Now().Add(-10*time.Minute))
	check("old signature", req, kds.ErrCodeInvalidSignature, "Signature expired:")
	req = request(body)
	sign(req, body, time.Now().Add(10*time.Minute))
	check("future signature", req, kds.ErrCodeInvalidSignature, "Signature not yet current:")

	req = request(body)
	sign(req, body, time.Now())
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.DeleteStream") // a signed header changed
	check("tampered header", req, kds.ErrCodeInvalidSignature, "signature we calculated does not match")

	check("unsigned", request(body), kds.ErrCodeMissingAuthenticationToken, "Missing Authentication Token")

	req = request(body)
	sign(req, body, time.Now())
	req.Header.Set("Authorization", strings.Split(req.Header.Get("Authorization"), ", Signature=")[0])
	check("no Signature", req, kds.ErrCodeIncompleteSignature, "Authorization header requires 'Signature' parameter.")

	req = request(body)
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDKSP/20240101, SignedHeaders=host, Signature=00")
	check("short credential", req, kds.ErrCodeIncompleteSignature, "Credential must have exactly 5 slash-delimited elements")

	req = request(body)
	req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	check("other scheme", req, kds.ErrCodeIncompleteSignature, "AWS4-HMAC-SHA256")

	// Health checks need no signature.
	resp, err := http.Get(srv.URL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health check: %d", resp.StatusCode)
	}
}
