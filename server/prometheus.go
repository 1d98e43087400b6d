package server

import (
	"net/http"

	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/metrics/promserver"
)

// PrometheusPath is where the server serves its metrics in Prometheus'
// exposition formats (package metrics/promserver names them), next to the
// JSON at metrics.Path. Both are built at request time from Metrics.
const PrometheusPath = "/metrics"

// MetricsHandler serves the server's metrics alone, for a port of their own
// (ksp server --metrics-addr): GET /metrics for Prometheus, GET /ksp/metrics
// as JSON; anything else is 404.
func (s *Server) MetricsHandler() http.Handler { return s.metricsHandler() }

func (s *Server) newMetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+PrometheusPath, promserver.Handler(s.Metrics))
	mux.HandleFunc("GET "+metrics.Path, func(w http.ResponseWriter, _ *http.Request) { s.serveMetrics(w) })
	return mux
}
