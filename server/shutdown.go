package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/ksp-project/ksp/kds"
)

// requests counts the API requests being served, so Shutdown can wait for
// them. It counts requests, not connections: an h2c connection is hijacked
// from net/http, whose Shutdown therefore cannot see its requests.
type requests struct {
	mu     sync.Mutex // guards: n, closed, idle
	n      int
	closed bool
	idle   chan struct{} // closed once closed and n is 0
}

// enter admits a request, or reports false once the server is shutting down.
func (g *requests) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *requests) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.closed && g.n == 0 {
		close(g.idle)
	}
}

// close admits no more requests and returns a channel closed when the last
// one admitted has left.
func (g *requests) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		g.idle = make(chan struct{})
		if g.n == 0 {
			close(g.idle)
		}
	}
	return g.idle
}

// count is the number of requests being served.
func (g *requests) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// track counts the requests next serves; once the server shuts down it
// answers new ones (on connections still open) 503 ServiceUnavailable.
func (s *Server) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.active.enter() {
			w.Header().Set("x-amzn-RequestId", s.requestID())
			s.writeError(w, requestCall(r), kds.Errorf(kds.ErrCodeServiceUnavailable, "The server is shutting down."))
			return
		}
		defer s.active.leave()
		next.ServeHTTP(w, r)
	})
}

// Shutdown stops the server gracefully: it stops accepting connections and
// requests, waits for the requests being served to finish or ctx to end
// (then it closes the connections), stops its background work and closes
// the store. It returns ctx's error when ctx ended before the requests did;
// the server is closed all the same. Shutdown and Close are idempotent and
// safe to call concurrently: only the first call does the work.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	idle := s.active.close()
	s.consumers.close() // subscriptions are long-lived requests: end them now
	var err error
	if s.http != nil {
		if err = s.http.Shutdown(ctx); err != nil {
			s.http.Close()
		}
	}
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Hijacked (h2c) connections are not net/http's to close: they were told
	// to go away; those still open after a moment (their last answers
	// flushed) are closed.
	s.conns.closeAll(ctx, s.opts.ConnectionGrace)
	close(s.closing)
	s.wg.Wait()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// closeTimeout is how long Close waits for requests in flight.
const closeTimeout = 5 * time.Second

// Close is Shutdown with a limit of 5 s for the requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}
