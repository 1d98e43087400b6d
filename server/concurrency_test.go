package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// postRaw sends one ListStreams call with the given body and declared length.
func postRaw(ctx context.Context, url string, body io.Reader, length int64) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	return http.DefaultClient.Do(req)
}

// TestMaxConcurrentRequests holds the only request slot with a request that
// is being served (slowed by injected latency) and checks that another
// request gets 503 ServiceUnavailable until the slot is free again, while a
// request whose body has not arrived holds no slot at all.
func TestMaxConcurrentRequests(t *testing.T) {
	srv := servertest.Start(t, server.Options{MaxConcurrentRequests: 1})
	ctx := context.Background()

	// A body that never finishes holds no slot: others are served meanwhile.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		if resp, err := postRaw(ctx, srv.URL(), pr, 100); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write([]byte(`{"Lim`)); err != nil { // the server is now reading the body
		t.Fatal(err)
	}
	resp, err := postRaw(ctx, srv.URL(), strings.NewReader("{}"), 2)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with a slow body pending and one slot: %d, want 200", resp.StatusCode)
	}

	// A request being served holds the slot.
	if err := srv.SetFaults(server.Faults{Latency: time.Minute}); err != nil {
		t.Fatal(err)
	}
	holdCtx, release := context.WithCancel(ctx)
	held := make(chan struct{})
	go func() {
		defer close(held)
		for holdCtx.Err() == nil { // until it wins the slot and is then released
			resp, err := postRaw(holdCtx, srv.URL(), strings.NewReader("{}"), 2)
			if err != nil {
				return
			}
			resp.Body.Close()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var status int
	var code string
	for i := 0; i < 200 && status != http.StatusServiceUnavailable; i++ {
		// A probe that wins the slot itself gives it back when its short deadline passes.
		probe, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		resp, err := postRaw(probe, srv.URL(), strings.NewReader("{}"), 2)
		if err == nil {
			status, code = resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
			var eb struct{ Message string }
			json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if status == http.StatusServiceUnavailable && !strings.Contains(eb.Message, "maximum of 1 concurrent requests") {
				t.Fatalf("503 message %q", eb.Message)
			}
		}
		cancel()
	}
	if status != http.StatusServiceUnavailable || code != kds.ErrCodeServiceUnavailable {
		t.Fatalf("second request while the slot is held: %d %s, want 503 %s", status, code, kds.ErrCodeServiceUnavailable)
	}
	release()
	<-held
	if err := srv.SetFaults(server.Faults{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		resp, err := postRaw(ctx, srv.URL(), strings.NewReader("{}"), 2)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the slot never came free")
}
