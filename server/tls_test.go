package server_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// protoRecorder remembers the protocol of the responses it carries.
type protoRecorder struct {
	rt     http.RoundTripper
	mu     sync.Mutex // guards: protos
	protos []string
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(r)
	if err == nil {
		p.mu.Lock()
		p.protos = append(p.protos, resp.Proto)
		p.mu.Unlock()
	}
	return resp, err
}

func TestTLSSelfSigned(t *testing.T) {
	srv := servertest.Start(t, server.Options{TLSSelfSigned: true})
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s is not https", srv.URL())
	}
	for _, tc := range []struct {
		name  string
		h2    bool
		proto string
	}{{"h2", true, "HTTP/2.0"}, {"http1.1", false, "HTTP/1.1"}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool()}, ForceAttemptHTTP2: tc.h2}
			if !tc.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			rec := &protoRecorder{rt: tr}
			c := servertest.NewClient(srv.URL(), srv.Region(), servertest.NoRetries, func(o *kinesis.Options) {
				o.HTTPClient = &http.Client{Transport: rec}
			})
			servertest.CreateStream(t, c, "tls-"+tc.name, 1)
			recs := servertest.ReadShard(t, c, "tls-"+tc.name, "shardId-000000000000")
			if len(recs) != 0 {
				t.Fatalf("new stream has %d records", len(recs))
			}
			if _, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{}); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, p := range rec.protos {
				if p != tc.proto {
					t.Fatalf("response over %s, want %s", p, tc.proto)
				}
			}
		})
	}
	// A client that does not trust the certificate is refused.
	_, err := servertest.NewClient(srv.URL(), srv.Region(), servertest.NoRetries).ListStreams(context.Background(), &kinesis.ListStreamsInput{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusting client: %v, want a certificate error", err)
	}
}
