package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestServerFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fsync", "sometimes"}, `--fsync "sometimes"`},
		{[]string{"--in-memory", "--data-dir", "x"}, "--in-memory excludes --data-dir"},
		{[]string{"--recover", "fix-it"}, `--recover "fix-it": want refuse or truncate-and-keep-copy`},
		{[]string{"--in-memory", "--recover", "refuse"}, "--in-memory excludes --data-dir, --fsync and --recover"},
		{[]string{"--auth", "nocolon"}, "want ACCESS_KEY_ID:SECRET_ACCESS_KEY"},
		{[]string{"--tls-cert", "c.pem"}, "TLSCertFile and TLSKeyFile go together"},
		{[]string{"--tls", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "TLSSelfSigned and TLSCertFile exclude each other"},
		{[]string{"--fault-error-rate", "PutRecrd=1"}, `unknown operation "PutRecrd"`},
		{[]string{"--fault-error-rate", "GetResourcePolicy=1"}, `unknown operation "GetResourcePolicy"`},
		{[]string{"--fault-error-code", "NotARealCode"}, `fault error code "NotARealCode" is not an AWS Kinesis error code`},
	} {
		var stderr strings.Builder
		code := Run(context.Background(), append([]string{"server", "--addr", "127.0.0.1:0"}, tc.args...), io.Discard, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("ksp server %v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// runServer runs `ksp server args...` in this process until the test ends
// and returns its stdout once the startup lines are out.
func runServer(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"server", "--addr", "127.0.0.1:0", "--log-level", "warn"}, args...), &out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("ksp server exited with %d", code)
		}
	})
	for i := 0; i < 1000 && !strings.Contains(out.String(), "SDKs:"); i++ {
		select {
		case code := <-done:
			t.Fatalf("ksp server exited with %d:\n%s", code, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return out.String()
}

func TestServerDefaultDataDir(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	out := runServer(t)
	if want := "storage: data dir " + filepath.Join(state, "ksp") + ", fsync always"; !strings.Contains(out, want) {
		t.Fatalf("startup lines lack %q:\n%s", want, out)
	}
	if _, err := os.Stat(filepath.Join(state, "ksp", "LOCK")); err != nil {
		t.Fatalf("default data dir not in use: %v", err)
	}
}

func TestServerTLSAndAuth(t *testing.T) {
	out := runServer(t, "--in-memory", "--tls", "--auth", "AKIDFLAGS:flag-secret")
	endpoint := regexp.MustCompile(`listening on (https://127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	caFile := regexp.MustCompile(`certificate written to (\S+)`).FindStringSubmatch(out)
	if endpoint == nil || caFile == nil || !strings.Contains(out, "storage: in memory") || !strings.Contains(out, "SigV4 signatures verified") {
		t.Fatalf("startup lines:\n%s", out)
	}
	pem, err := os.ReadFile(caFile[1])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the CA file")
	}
	client := func(secret string) *kinesis.Client {
		return servertest.NewClient(endpoint[1], "us-east-1", servertest.NoRetries, func(o *kinesis.Options) {
			o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
			o.Credentials = credentials.NewStaticCredentialsProvider("AKIDFLAGS", secret, "")
		})
	}
	ctx := context.Background()
	if _, err := client("flag-secret").ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("signed ListStreams over TLS: %v", err)
	}
	_, err = client("wrong").ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Fatalf("wrong secret: %v, want InvalidSignatureException", err)
	}
}
