// Package server is an embeddable Kinesis Data Streams-compatible server.
//
// It speaks the real wire protocol (JSON 1.1 and CBOR 1.1 over HTTP/1.1 and
// h2c on one port), so the AWS SDKs, the AWS CLI and the Java KCL talk to it
// unchanged. By default it is AWS-faithful: per-shard write limits (1 MiB/s,
// 1,000 records/s) and read limits (5 GetRecords calls/s, 2 MiB/s) answer
// ProvisionedThroughputExceededException, iterators expire after 5 minutes,
// and validation failures carry AWS's messages.
//
// Options add TLS (HTTP/2 over ALPN and HTTP/1.1), SigV4 signature
// verification and a cap on concurrent requests. Records older than a
// stream's retention are trimmed in the background (EnforceRetention).
//
// Guarantees: within a shard, sequence numbers strictly increase in the order
// records were accepted, and GetRecords returns records in that order, each
// once. A PutRecord(s) call is acknowledged only after its records are
// committed to the store (see package store for what durable means there).
// On a store.Disk, a new Server on the same directory serves the streams,
// records, sequence numbers, arrival times and iterators of the last one.
// Requests that fail validation change nothing.
//
//	srv, err := server.New(server.Options{})
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close()
//	endpoint := srv.URL() // http://127.0.0.1:PORT
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server/store"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// Options configure a Server. The zero value is a loopback server on a
// random port with AWS limits, an in-memory store and region us-east-1.
type Options struct {
	// Addr is the listen address (default "127.0.0.1:0": loopback, random port).
	Addr string
	// Region and Account appear in ARNs (default us-east-1, 000000000000).
	Region  string
	Account string
	// DisableLimits turns off the per-shard throughput limits (for benchmarks).
	DisableLimits bool
	// CreateDelay is how long a stream stays CREATING (and DELETING, UPDATING)
	// before the change completes (default 0: immediately).
	CreateDelay time.Duration
	// Store keeps records and metadata (default: a fresh in-memory store). The
	// server closes it on Close.
	Store store.Store
	// MaxBodyBytes caps a request body; larger requests are refused before they
	// are read (default 16 MiB, enough for a 10 MiB PutRecords in base64).
	MaxBodyBytes int64
	// ShardLimit is the account's shard quota reported by DescribeLimits and
	// enforced by CreateStream (default 500).
	ShardLimit int
	// Faults injects latency and errors for testing clients; see Faults.
	Faults Faults
	// Logger receives the server's logs (nil: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests use it to control time.
	Now func() time.Time

	// RetentionInterval is how often a background loop trims records older
	// than their stream's retention period and drops closed shards whose
	// whole life is past it (default 1 minute; negative: no loop, call
	// EnforceRetention yourself).
	RetentionInterval time.Duration

	// Credentials turns on SigV4 verification when non-empty: every request
	// must carry an AWS Signature Version 4 Authorization header made with one
	// of these access key ids (map key) and its secret (value), for service
	// "kinesis", within 5 minutes of the server's clock. Nil accepts any
	// request, signed or not, as before.
	Credentials map[string]string

	// TLSCertFile and TLSKeyFile serve HTTPS with this PEM certificate and
	// key (HTTP/2 over ALPN and HTTP/1.1). TLSSelfSigned serves HTTPS with a
	// freshly generated self-signed ECDSA certificate for 127.0.0.1, ::1 and
	// localhost instead; CertPool and CertPEM give clients what to trust.
	// Default: cleartext HTTP/1.1 and h2c.
	TLSCertFile   string
	TLSKeyFile    string
	TLSSelfSigned bool

	// MaxConcurrentRequests caps the requests being served at once; a request
	// beyond the cap is answered at once with 503 ServiceUnavailable (as AWS
	// does under overload; SDKs retry it with backoff) instead of queueing
	// without bound. Default 256; negative: no cap.
	MaxConcurrentRequests int
}

// Server is a running (or ready to run) Kinesis-compatible server.
type Server struct {
	opts  Options
	store store.Store
	log   *slog.Logger
	now   func() time.Time

	iterKey []byte
	faults  atomic.Pointer[Faults]

	mu      sync.RWMutex // guards: streams, closed
	streams map[string]*stream

	ln      net.Listener
	http    *http.Server
	tlsCert *tls.Certificate // nil: cleartext
	certPEM []byte           // PEM of tlsCert's leaf
	slots   chan struct{}    // concurrent request slots; nil: no cap
	wg      sync.WaitGroup   // background goroutines (serve loop, status timers)
	closing chan struct{}
	closed  atomic.Bool
	reqSeq  atomic.Uint64
	reqBase [8]byte
}

// New builds a server from opts and loads the store's streams. It does not
// listen yet; call Start.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "000000000000"
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.ShardLimit <= 0 {
		opts.ShardLimit = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Store == nil {
		opts.Store = store.NewMemory()
	}
	if opts.RetentionInterval == 0 {
		opts.RetentionInterval = time.Minute
	}
	if opts.MaxConcurrentRequests == 0 {
		opts.MaxConcurrentRequests = 256
	}
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errors.New("server: TLSCertFile and TLSKeyFile go together")
	}
	if opts.TLSSelfSigned && opts.TLSCertFile != "" {
		return nil, errors.New("server: TLSSelfSigned and TLSCertFile exclude each other")
	}
	for id, secret := range opts.Credentials {
		if id == "" || secret == "" {
			return nil, errors.New("server: Credentials need a non-empty access key id and secret")
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, store: opts.Store, log: log, now: opts.Now,
		streams: make(map[string]*stream), closing: make(chan struct{}),
		iterKey: make([]byte, 32),
	}
	rand.Read(s.iterKey)
	rand.Read(s.reqBase[:])
	if opts.MaxConcurrentRequests > 0 {
		s.slots = make(chan struct{}, opts.MaxConcurrentRequests)
	}
	if err := s.loadTLS(); err != nil {
		return nil, err
	}
	f := opts.Faults
	s.faults.Store(&f)
	if err := s.loadMeta(); err != nil {
		return nil, fmt.Errorf("server: loading metadata: %w", err)
	}
	s.mu.Lock()
	err := s.saveMetaLocked() // persist the iterator key of a new store
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("server: saving metadata: %w", err)
	}
	return s, nil
}

// Start listens on Options.Addr and serves in the background.
func (s *Server) Start() error {
	if s.closed.Load() {
		return errors.New("server: closed")
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", s.opts.Addr, err)
	}
	return s.Serve(ln)
}

// Serve serves on ln in the background (Start calls it). With TLS options,
// ln carries TLS (HTTP/2 through ALPN, or HTTP/1.1); otherwise cleartext
// HTTP/1.1 and h2c. It also starts the retention loop.
func (s *Server) Serve(ln net.Listener) error {
	if s.closed.Load() {
		return errors.New("server: closed")
	}
	h := s.HTTPHandler()
	s.http = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.tlsCert != nil {
		s.http.Handler = h
		s.http.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{*s.tlsCert},
			NextProtos:   []string{"h2", "http/1.1"},
			MinVersion:   tls.VersionTLS12,
		}
		if err := http2.ConfigureServer(s.http, &http2.Server{}); err != nil {
			return fmt.Errorf("server: configuring HTTP/2: %w", err)
		}
		ln = tls.NewListener(ln, s.http.TLSConfig)
	} else {
		// h2c through x/net's handler around ours. The "use of closed network
		// connection" errors of aws-sdk-go-v2 clients over HTTP/1.1, once blamed
		// here on net/http's own h2c (Protocols), are smithy-go's client bug
		// (docs/smithy-http11-bug.md, package sdkhttp), with either server.
		s.http.Handler = h2c.NewHandler(h, &http2.Server{})
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	if s.opts.RetentionInterval > 0 {
		s.wg.Add(1)
		go s.retentionLoop(s.opts.RetentionInterval)
	}
	s.log.Info("kinesis server listening", "addr", ln.Addr().String(), "tls", s.tlsCert != nil, "sigv4", len(s.opts.Credentials) > 0)
	return nil
}

// HTTPHandler is the handler Serve serves: the API with the configured
// concurrency cap and signature verification, for use in another
// http.Server (Serve adds h2c or TLS around it).
func (s *Server) HTTPHandler() http.Handler {
	var h http.Handler = s
	if len(s.opts.Credentials) > 0 {
		h = s.verifySigV4(h)
	}
	return s.limitConcurrency(h)
}

// limitConcurrency answers 503 ServiceUnavailable to a request arriving
// while Options.MaxConcurrentRequests others are being served.
func (s *Server) limitConcurrency(next http.Handler) http.Handler {
	if s.slots == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.slots <- struct{}{}:
		default:
			w.Header().Set("x-amzn-RequestId", s.requestID())
			s.writeError(w, requestCall(r), kds.Errorf(kds.ErrCodeServiceUnavailable,
				"The server is serving its maximum of %d concurrent requests; retry later.", cap(s.slots)))
			return
		}
		defer func() { <-s.slots }()
		next.ServeHTTP(w, r)
	})
}

// requestCall is the call used to answer a request refused before
// ServeHTTP: only its encoding is known.
func requestCall(r *http.Request) *call {
	ctype, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	return &call{ctx: r.Context(), op: op, cbor: strings.TrimSpace(ctype) == contentCBOR}
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the endpoint to give SDKs: http://ADDR, or https://ADDR with TLS.
func (s *Server) URL() string {
	if s.tlsCert != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// Region and Account are the values used in ARNs.
func (s *Server) Region() string  { return s.opts.Region }
func (s *Server) Account() string { return s.opts.Account }

// SetFaults replaces the injected faults while the server runs.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.faults.Store(&f)
	return nil
}

// Close stops serving, waits for background work and closes the store. It is
// idempotent and safe to call concurrently.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	var err error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.http.Shutdown(ctx)
		cancel()
		if err != nil {
			err = s.http.Close()
		}
	}
	s.wg.Wait()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// after runs fn after d in a tracked goroutine, unless the server closes
// first (then fn is skipped). d <= 0 runs fn now, synchronously.
func (s *Server) after(d time.Duration, fn func()) {
	if d <= 0 {
		fn()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fn()
		case <-s.closing:
		}
	}()
}
