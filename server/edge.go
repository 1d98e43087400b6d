package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ksp-project/ksp/kds"
	"golang.org/x/net/http2"
)

// The edge is what stands between the network and the API so that slow and
// hostile clients cannot deny the server to others, with or without
// credentials:
//   - headers must arrive within 10 s; a keep-alive connection idle for
//     IdleTimeout is closed;
//   - with Credentials, everything the headers carry of the signature is
//     checked before a byte of the body is read (sigv4.go);
//   - the body is read under deadlines (no stall longer than BodyTimeout,
//     at least MinBodyRate on average after it) into memory that is counted
//     against MaxBodyBytesInFlight as it arrives, never reserved ahead for a
//     declared Content-Length;
//   - only a request whose body has fully arrived takes one of the
//     MaxConcurrentRequests slots;
//   - an HTTP/2 connection may open HTTP2MaxConcurrentStreams streams and
//     send no more than its flow-control windows ahead of the server.

const (
	// smallBody is the largest body that may use the quarter of
	// MaxBodyBytesInFlight kept for small calls.
	smallBody = 1 << 20
	// bodyChunk is the first allocation for a body whose length is unknown
	// or larger: memory then doubles as bytes actually arrive, so a
	// connection that sends headers and stalls holds only this much.
	bodyChunk = 4 << 10
)

// edgeDefaults fills the edge options' defaults and checks them.
func (o *Options) edgeDefaults() error {
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 10 * time.Second
	}
	if o.MinBodyRate == 0 {
		o.MinBodyRate = 64 << 10
	}
	if o.MaxBodyBytesInFlight == 0 {
		o.MaxBodyBytesInFlight = 256 << 20
	}
	if o.HTTP2MaxConcurrentStreams == 0 {
		o.HTTP2MaxConcurrentStreams = 100
	}
	if o.HTTP2StreamWindow <= 0 {
		o.HTTP2StreamWindow = 1 << 20
	}
	if o.HTTP2ConnWindow <= 0 {
		o.HTTP2ConnWindow = 4 << 20
	}
	if b := o.MaxBodyBytesInFlight; b > 0 && b-b/4 < o.MaxBodyBytes {
		return fmt.Errorf("server: MaxBodyBytesInFlight (%d) must leave three quarters (%d) for one body of MaxBodyBytes (%d)", b, b-b/4, o.MaxBodyBytes)
	}
	return nil
}

// http2Server is the HTTP/2 configuration of h2c and TLS connections.
func (s *Server) http2Server() *http2.Server {
	return &http2.Server{
		MaxConcurrentStreams:         s.opts.HTTP2MaxConcurrentStreams,
		MaxUploadBufferPerStream:     s.opts.HTTP2StreamWindow,
		MaxUploadBufferPerConnection: s.opts.HTTP2ConnWindow,
		IdleTimeout:                  max(s.opts.IdleTimeout, 0),
	}
}

// bodyBudget counts the request body bytes held at once.
type bodyBudget struct {
	limit    int64 // <= 0: no cap
	bigLimit int64 // the part bodies over smallBody may use
	used     atomic.Int64
}

func (b *bodyBudget) init(limit int64) {
	b.limit, b.bigLimit = limit, limit-limit/4
}

// take adds n bytes to a body already holding held, of declared length
// (-1: unknown); false (and nothing taken) when that would pass the cap. A
// body is large, and kept out of the reserved quarter, once it declares or
// holds more than smallBody.
func (b *bodyBudget) take(n, held, length int64) bool {
	if b.limit <= 0 {
		b.used.Add(n)
		return true
	}
	limit := b.limit
	if held+n > smallBody || length > smallBody {
		limit = b.bigLimit
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

// BodyBytesInFlight is how many bytes of request bodies the server holds
// right now (a gauge bounded by Options.MaxBodyBytesInFlight).
func (s *Server) BodyBytesInFlight() int64 { return s.bodies.used.Load() }

// serveEdge is HTTPHandler: ServeHTTP's steps with the edge protections.
// A long-lived response (SubscribeToShard's event stream) is written after
// the request has given back its concurrency slot and body budget.
func (s *Server) serveEdge(w http.ResponseWriter, r *http.Request) {
	if es := s.serveEdgeCall(w, r); es != nil {
		es.serveStream(w, r)
	}
}

// serveEdgeCall runs one call under the edge protections and returns the
// event stream still to write, if the call answers with one.
func (s *Server) serveEdgeCall(w http.ResponseWriter, r *http.Request) eventStreamer {
	w.Header().Set("x-amzn-RequestId", s.requestID())
	// The body deadline starts with the headers, so that the body net/http
	// discards after a refusal is bounded too.
	start := time.Now() // deadlines are network time, never Options.Now
	rc := http.NewResponseController(w)
	deadlines := rc.SetReadDeadline(start.Add(s.opts.BodyTimeout)) == nil
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		// Until the body has arrived, an answer closes the connection:
		// net/http would otherwise read the unread body before answering.
		w.Header().Set("Connection", "close")
	}
	var signed *signedRequest
	if len(s.opts.Credentials) > 0 && !isHealthCheck(r) && !isMetrics(r) {
		var err error
		if signed, err = s.checkSignatureHeaders(r); err != nil {
			s.writeError(w, requestCall(r), err)
			return nil
		}
	}
	c, fn, ok := s.route(w, r)
	if !ok {
		return nil
	}
	body, held, err := s.readEdgeBody(r, rc, start, deadlines)
	defer s.bodies.give(held)
	defer putBodyBuffer(body) // nothing decoded keeps a reference into the body
	if err != nil {
		s.writeError(w, c, err)
		return nil
	}
	w.Header().Del("Connection")
	if signed != nil {
		if err := signed.checkPayload(body); err != nil {
			s.writeError(w, c, err)
			return nil
		}
	}
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			s.writeError(w, c, kds.Errorf(kds.ErrCodeServiceUnavailable,
				"The server is serving its maximum of %d concurrent requests; retry later.", cap(s.slots)))
			return nil
		}
	}
	return s.serveCall(w, r, c, fn, body)
}

// readEdgeBody reads r's whole body under the edge's deadlines (counted
// from start, when the read deadline was first set) and budget. held is what
// it took from the budget, to give back once the request is answered, error
// or not. Without deadline support (the ResponseWriter of a test or of
// another server) the body is read plainly; the budget still applies.
func (s *Server) readEdgeBody(r *http.Request, rc *http.ResponseController, start time.Time, deadlines bool) (body []byte, held int64, err error) {
	timeout, rate := s.opts.BodyTimeout, s.opts.MinBodyRate
	current := start.Add(timeout)
	if deadlines {
		defer func() {
			// The handler's own time is not the body's. After a failed body
			// the deadline stays: net/http would otherwise wait for the rest
			// of it to keep the connection, which a stalled client never sends.
			if err == nil {
				rc.SetReadDeadline(time.Time{})
			}
		}()
	}
	length := r.ContentLength
	var buf []byte // the pooled buffer body is in, given back on failure
	defer func() {
		if err != nil {
			putBodyBuffer(buf)
		}
	}()
	grow := func(n int64) error {
		if !s.bodies.take(n, held, length) {
			return kds.Errorf(kds.ErrCodeServiceUnavailable,
				"The server is receiving its maximum of %d bytes of request bodies; retry later.", s.opts.MaxBodyBytesInFlight)
		}
		held += n
		grown := getBodyBuffer(held)[:len(body)]
		copy(grown, body)
		putBodyBuffer(buf)
		body, buf = grown, grown
		return nil
	}
	first := int64(bodyChunk)
	if length >= 0 && length <= bodyChunk {
		first = length
	}
	if err := grow(first); err != nil {
		return nil, held, err
	}
	for length < 0 || int64(len(body)) < length {
		if int64(len(body)) == held { // held, not cap(body): a pooled buffer may be larger
			limit := s.opts.MaxBodyBytes + 1 // one byte more tells an unknown length is over
			if length >= 0 {
				limit = length
			}
			if int64(len(body)) >= limit {
				return nil, held, s.tooLarge(-1)
			}
			if err := grow(min(held, limit-held)); err != nil {
				return nil, held, err
			}
		}
		n, err := r.Body.Read(body[len(body):held])
		body = body[:len(body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, held, kds.Errorf(kds.ErrCodeRequestTimeout,
					"The request body arrived too slowly: %d bytes in %s (bodies may not stall for %s, nor average under %d bytes/s after it).",
					len(body), time.Since(start).Round(time.Millisecond), timeout, rate)
			}
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return nil, held, s.tooLarge(-1)
			}
			return nil, held, kds.Errorf(kds.ErrCodeSerialization, "Reading request body: %v", err)
		}
		if n > 0 && deadlines {
			// Both rules give a latest time for the next bytes; refreshing
			// only when it moved by an eighth of the timeout keeps the cost
			// of deadlines (a message to the HTTP/2 connection's goroutine)
			// off the per-read path.
			now := time.Now()
			next := now.Add(timeout)
			if rate > 0 {
				if byRate := start.Add(timeout + time.Duration(float64(len(body))/float64(rate)*float64(time.Second))); byRate.Before(next) {
					next = byRate
				}
			}
			if next.Sub(current) > timeout/8 {
				rc.SetReadDeadline(next)
				current = next
			}
		}
	}
	if int64(len(body)) > s.opts.MaxBodyBytes {
		return nil, held, s.tooLarge(-1)
	}
	return body, held, nil
}

// Request bodies are read into buffers pooled by size class (powers of two
// from bodyChunk up to maxPooledBody), so that a busy server reads them
// without zeroing fresh memory for each one. A pooled buffer may be larger
// than the bytes taken from the budget for it; the reader never reads past
// those. Larger bodies are allocated plainly.
const (
	maxPooledBody = 32 << 20
	bodyClasses   = 14 // bodyChunk<<13 == maxPooledBody
)

var bodyPools [bodyClasses]sync.Pool

// bodyClass is the index of the smallest class of at least n bytes, or -1.
func bodyClass(n int64) int {
	if n > maxPooledBody {
		return -1
	}
	c := 0
	for size := int64(bodyChunk); size < n; size <<= 1 {
		c++
	}
	return c
}

// getBodyBuffer returns an empty buffer of at least n bytes of capacity.
func getBodyBuffer(n int64) []byte {
	c := bodyClass(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if p, _ := bodyPools[c].Get().(*[]byte); p != nil {
		return (*p)[:0]
	}
	return make([]byte, 0, bodyChunk<<c)
}

// putBodyBuffer gives a buffer of getBodyBuffer back for reuse; nothing may
// use it afterwards. Other buffers are left to the collector.
func putBodyBuffer(b []byte) {
	c := bodyClass(int64(cap(b)))
	if c < 0 || cap(b) != bodyChunk<<c {
		return
	}
	b = b[:0]
	bodyPools[c].Put(&b)
}
