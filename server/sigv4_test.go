package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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
	send := func(req *http.Request) (int, string, string) { return answer(t, req) }
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

// withCreds makes a client sign with the static credentials id, secret.
func withCreds(id, secret string) func(*kinesis.Options) {
	return func(o *kinesis.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	}
}

// signedRaw builds a DescribeStreamSummary request for url signed with
// AKIDKSP's secret over the headers present when sign runs.
type signedRaw struct {
	t      *testing.T
	url    string
	signer *v4.Signer
	creds  aws.Credentials
}

func (s signedRaw) request(body []byte, headers map[string]string, signedHash bool) *http.Request {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if signedHash {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	if err := s.signer.SignHTTP(context.Background(), s.creds, req, hash, "kinesis", "us-east-1", time.Now()); err != nil {
		s.t.Fatal(err)
	}
	return req
}

func answer(t *testing.T, req *http.Request) (int, string, string) {
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

// TestSigV4RefusesUnsignedHeaders replays captured signatures with changed
// or added headers: a signature that covers only host and x-amz-date must not
// authorize another operation (the swap that deleted a stream), and every
// x-amz-* header and Content-Type must be signed, as AWS requires.
func TestSigV4RefusesUnsignedHeaders(t *testing.T) {
	srv := servertest.Start(t, server.Options{Credentials: map[string]string{"AKIDKSP": "s3cret"}})
	raw := signedRaw{t: t, url: srv.URL(), signer: v4.NewSigner(), creds: aws.Credentials{AccessKeyID: "AKIDKSP", SecretAccessKey: "s3cret"}}
	body := []byte(`{"StreamName":"keep"}`)
	api := map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.CreateStream"}
	if status, typ, msg := answer(t, raw.request([]byte(`{"StreamName":"keep","ShardCount":1}`), api, false)); status != http.StatusOK {
		t.Fatalf("signed CreateStream: %d %s %s", status, typ, msg)
	}

	// The swap: signed over host and x-amz-date only, then given a target.
	req := raw.request(body, nil, false)
	if got := req.Header.Get("Authorization"); strings.Contains(got, "x-amz-target") || strings.Contains(got, "content-type") {
		t.Fatalf("setup: the signature covers more than host and date: %s", got)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.DeleteStream")
	status, typ, msg := answer(t, req)
	if typ != kds.ErrCodeIncompleteSignature || !strings.Contains(msg, "content-type, x-amz-target") {
		t.Fatalf("operation swap with an unsigned X-Amz-Target: %d %s %q", status, typ, msg)
	}

	for _, tc := range []struct{ name, header, value, unsigned string }{
		{"unsigned x-amz-* header", "X-Amz-Security-Token", "stolen", "x-amz-security-token"},
		{"unsigned target", "X-Amz-Target", "Kinesis_20131202.DeleteStream", "x-amz-target"},
	} {
		signedHeaders := map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.DescribeStreamSummary"}
		if tc.header == "X-Amz-Target" {
			delete(signedHeaders, "X-Amz-Target")
		}
		req := raw.request(body, signedHeaders, false)
		req.Header.Set(tc.header, tc.value)
		if _, typ, msg := answer(t, req); typ != kds.ErrCodeIncompleteSignature || !strings.Contains(msg, "not signed: "+tc.unsigned) {
			t.Errorf("%s: %s %q", tc.name, typ, msg)
		}
	}

	// Payload tampering, with the hash sent as X-Amz-Content-Sha256 (checked
	// before the body) and without it (the canonical request's hash).
	for _, signedHash := range []bool{true, false} {
		req := raw.request(body, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.DeleteStream"}, signedHash)
		req.Body = io.NopCloser(strings.NewReader(`{"StreamName":"kept"}`)) // same length, another stream
		want := "signature we calculated does not match"
		if signedHash {
			want = "'x-amz-content-sha256' header does not match"
		}
		if _, typ, msg := answer(t, req); typ != kds.ErrCodeInvalidSignature || !strings.Contains(msg, want) {
			t.Errorf("tampered payload (hash header %v): %s %q", signedHash, typ, msg)
		}
	}

	// Presigned query-string requests are refused, saying so.
	req = raw.request(body, api, false)
	req.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
	if _, typ, msg := answer(t, req); typ != kds.ErrCodeIncompleteSignature || !strings.Contains(msg, "Presigned (query-string) SigV4 requests are not accepted") {
		t.Errorf("presigned request: %s %q", typ, msg)
	}

	// After all that, the stream is still there.
	req = raw.request(body, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.DescribeStreamSummary"}, false)
	if status, typ, msg := answer(t, req); status != http.StatusOK {
		t.Fatalf("the stream did not survive the replays: %d %s %s", status, typ, msg)
	}
}

// TestSigV4CheckedBeforeBody sends requests whose bodies never arrive: a
// request without a signature, with an unknown key, or with a wrong
// signature over a declared X-Amz-Content-Sha256 is answered from its
// headers alone, so it cannot make the server wait for or buffer a body.
func TestSigV4CheckedBeforeBody(t *testing.T) {
	srv := servertest.Start(t, server.Options{Credentials: map[string]string{"AKIDKSP": "s3cret"}})
	wrong := signedRaw{t: t, url: srv.URL(), signer: v4.NewSigner(), creds: aws.Credentials{AccessKeyID: "AKIDKSP", SecretAccessKey: "wrong"}}
	stranger := wrong
	stranger.creds.AccessKeyID = "AKIDSTRANGER"
	body := []byte(`{"StreamName":"s"}`)
	headers := func(req *http.Request) http.Header {
		h := req.Header.Clone()
		h.Del("Content-Length")
		return h
	}
	api := map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams"}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"unsigned", http.Header{}, kds.ErrCodeMissingAuthenticationToken},
		{"unknown key", headers(stranger.request(body, api, true)), kds.ErrCodeUnrecognizedClient},
		{"wrong signature over the declared hash", headers(wrong.request(body, api, true)), kds.ErrCodeInvalidSignature},
	} {
		for proto, client := range map[string]*http.Client{"HTTP/1.1": h1Client(), "h2c": h2cClient()} {
			a := startStalled(client, srv.URL(), "ListStreams", int64(len(body)), nil, tc.header)
			select {
			case status := <-a.status:
				if status != http.StatusBadRequest {
					t.Errorf("%s over %s: %d before the body was sent, want 400 %s", tc.name, proto, status, tc.want)
				}
			case <-time.After(safety):
				t.Errorf("%s over %s: no answer without the body", tc.name, proto)
			}
			a.stop()
		}
	}
}

// A derived signing key is kept only once a signature made with it matched:
// requests with a known access key, a wrong secret and made-up regions fill
// nothing (the region is not checked, so each would be a new entry).
func TestSigV4KeepsOnlyKeysThatSigned(t *testing.T) {
	srv := servertest.Start(t, server.Options{Credentials: map[string]string{"AKIDKSP": "s3cret"}})
	ctx := context.Background()
	for i := range 5 {
		c := servertest.NewClient(srv.URL(), fmt.Sprintf("made-up-%d", i), servertest.NoRetries,
			withCreds("AKIDKSP", "wrong"))
		_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
		wantCode(t, err, kds.ErrCodeInvalidSignature, "The request signature we calculated does not match")
	}
	if n := server.SigningKeysCached(srv); n != 0 {
		t.Fatalf("%d signing keys kept after only refused signatures, want 0", n)
	}
	c := servertest.NewClient(srv.URL(), srv.Region(), servertest.NoRetries,
		withCreds("AKIDKSP", "s3cret"))
	for range 2 {
		if _, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := server.SigningKeysCached(srv); n != 1 {
		t.Fatalf("%d signing keys kept after two accepted requests of one scope, want 1", n)
	}
}
