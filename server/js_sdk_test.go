package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server"
)

// TestSubscribeToShardJSSDK: the AWS JavaScript SDK v3 reads a subscription
// from ksp: the initial response, records, continuation number.
func TestSubscribeToShardJSSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := peers.Install(ctx); err != nil {
		peers.Unavailable(t, err)
	}
	modules := filepath.Join(peers.NPMDir(), "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@aws-sdk", "client-kinesis")); err != nil {
		peers.Unavailable(t, errors.New("@aws-sdk/client-kinesis is not installed: run npm ci in "+peers.NPMDir()))
	}
	c, es, arn := efoSetup(t, "h2c", server.Options{})
	seqs := put(t, c, "s", "a", "b", "c")
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "subscribe_js_sdk.js"), es.srv.URL(), arn, "shardId-000000000000", "3")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var got struct {
		Records      []string
		Continuation string
		MillisBehind *int64
		Events       int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	if strings.Join(got.Records, ",") != "a,b,c" || got.Continuation != seqs[2] || got.MillisBehind == nil || got.Events < 1 {
		t.Fatalf("the JS SDK read %+v; want records a,b,c and continuation %s", got, seqs[2])
	}
}
