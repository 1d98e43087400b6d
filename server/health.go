package server

import (
	"io"
	"net/http"
)

// serveHealth answers GET /health (and /healthcheck): 200 "ok" while the
// store takes writes; 503 "degraded: ..." while it cannot (a full disk it is
// retrying, or a failure that needs a restart). Reads are served either way.
func (s *Server) serveHealth(w http.ResponseWriter) {
	if err := s.Health(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "degraded: "+clientError(err).Message+"\n")
		return
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok\n")
}

// Health returns why the server's store cannot take writes now, or nil. A
// store without the notion (the memory store) is always healthy.
func (s *Server) Health() error {
	if h, ok := s.store.(interface{ Health() error }); ok {
		return h.Health()
	}
	return nil
}
