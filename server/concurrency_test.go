package server_test

import (
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

// TestMaxConcurrentRequests holds the only request slot with a request whose
// body never finishes, and checks that another request gets 503
// ServiceUnavailable until the slot is free again.
func TestMaxConcurrentRequests(t *testing.T) {
	srv := servertest.Start(t, server.Options{MaxConcurrentRequests: 1})
	post := func(body io.Reader, length int64) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL(), body)
		req.ContentLength = length
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		return http.DefaultClient.Do(req)
	}
	pr, pw := io.Pipe()
	held := make(chan error, 1)
	go func() {
		resp, err := post(pr, 100)
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	if _, err := pw.Write([]byte(`{"Lim`)); err != nil { // the server is now reading the body
		t.Fatal(err)
	}
	// Poll (bounded) until the held request occupies the slot.
	var status int
	var code string
	for i := 0; i < 500 && status != http.StatusServiceUnavailable; i++ {
		resp, err := post(strings.NewReader("{}"), 2)
		if err != nil {
			t.Fatal(err)
		}
		status, code = resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
		var eb struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if status == http.StatusServiceUnavailable && !strings.Contains(eb.Message, "maximum of 1 concurrent requests") {
			t.Fatalf("503 message %q", eb.Message)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status != http.StatusServiceUnavailable || code != kds.ErrCodeServiceUnavailable {
		t.Fatalf("second request while the slot is held: %d %s, want 503 %s", status, code, kds.ErrCodeServiceUnavailable)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-held
	for i := 0; i < 500; i++ {
		resp, err := post(strings.NewReader("{}"), 2)
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
