package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// GET /metrics answers the Prometheus text format on the API port without a
// signature, even with signatures required (the stream is created with
// the test clients' signed requests); the metrics-only handler serves
// both formats and nothing else.
func TestPrometheusEndpoint(t *testing.T) {
	srv := servertest.Start(t, server.Options{Credentials: map[string]string{"ksp": "ksp"}})
	servertest.CreateStream(t, servertest.Client(t, srv), "p", 1)

	resp, err := http.Get(srv.URL() + server.PrometheusPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `kinesis_open_shards{stream="p"} 1`) {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}

	h := srv.MetricsHandler()
	for path, want := range map[string]int{server.PrometheusPath: 200, metrics.Path: 200, "/": 404, "/health": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("metrics handler GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}
