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
// verification and a cap on concurrent requests. Slow and hostile clients
// cannot deny the server to others: bodies are read under deadlines and a
// budget of in-flight bytes, a request takes a concurrency slot only once its
// body has arrived, signatures are checked from the headers first, and idle
// connections are closed (see edge.go and docs/server.md). Records older than
// a stream's retention are trimmed in the background (EnforceRetention).
//
// Guarantees: within a shard, sequence numbers strictly increase in the order
// records were accepted, and GetRecords returns records in that order, each
// once. A PutRecord(s) call is acknowledged only after its records are
// committed to the store (see package store for what durable means there).
// On a store.Disk, a new Server on the same directory serves the streams,
// records, sequence numbers, arrival times and iterators of the last one.
// Requests that fail validation change nothing. Shutdown(ctx) stops the
// server gracefully: the requests being served finish (until ctx ends)
// before the store is closed; Close is Shutdown with a 5 s limit.
//
//	srv, err := server.New(server.Options{})
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close()
//	endpoint := srv.URL() // http://127.0.0.1:PORT
package server

import (
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
	// without bound. A request takes its slot only once its whole body has
	// arrived, so slow senders cannot hold slots. Default 256; negative: no cap.
	MaxConcurrentRequests int

	// The edge protections below keep slow and hostile clients from denying
	// the server to others (see edge.go). A zero value takes the default.

	// IdleTimeout closes a keep-alive connection (HTTP/1.1 or HTTP/2) that
	// carried no request for this long (default 2 minutes, longer than the
	// AWS SDKs' 90 s pool timeout so that clients close first; negative: never).
	IdleTimeout time.Duration
	// BodyTimeout is the longest the server waits for the next bytes of a
	// request body, and the time a body has before MinBodyRate applies
	// (default 10 s). A body slower than either rule is cut: the request is
	// answered 408 RequestTimeoutException and its connection closed.
	BodyTimeout time.Duration
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second averaged from the end of its headers, once BodyTimeout has
	// passed (default 64 KiB/s; negative: no minimum).
	MinBodyRate int64
	// MaxBodyBytesInFlight caps the bytes of request bodies held at once,
	// counted as they arrive and until their request is answered (default
	// 256 MiB; negative: no cap). A request that would go past it is answered
	// 503 ServiceUnavailable at once. Its last quarter is kept for bodies of
	// at most 1 MiB, so large uploads never starve small calls; the other
	// three quarters must hold MaxBodyBytes.
	MaxBodyBytesInFlight int64
	// HTTP2MaxConcurrentStreams caps the requests open at once on one HTTP/2
	// connection (default 100). HTTP2StreamWindow and HTTP2ConnWindow are the
	// flow-control windows granted per stream and per connection (default
	// 1 MiB and 4 MiB): how much a client may send ahead of the server.
	HTTP2MaxConcurrentStreams uint32
	HTTP2StreamWindow         int32
	HTTP2ConnWindow           int32

	// SubscriptionLifetime is how long a SubscribeToShard event stream lasts
	// before it ends and the client re-subscribes (default 5 minutes, as on
	// AWS; tests shorten it).
	SubscriptionLifetime time.Duration

	// ConnectionGrace is how long Shutdown lets HTTP/2 connections, told to
	// go away once their requests ended, close by themselves (so their last
	// frames are read, not cut by a reset) before it closes them. Default
	// 1 s, x/net's own GOAWAY wait, safe over any network; over loopback a
	// few milliseconds suffice (servertest uses 20 ms).
	ConnectionGrace time.Duration
}

// Server is a running (or ready to run) Kinesis-compatible server.
type Server struct {
	opts  Options
	store store.Store
	log   *slog.Logger
	now   func() time.Time

	iterKey []byte
	faults  atomic.Pointer[Faults]

	metaMu  sync.Mutex   // sequencer of metadata changes (meta.go); guards: nothing in memory
	mu      sync.RWMutex // guards: streams
	streams map[string]*stream

	consumers consumerRegistry // stream consumers and subscriptions (enhanced fan-out)

	ln      net.Listener
	http    *http.Server
	tlsCert *tls.Certificate              // nil: cleartext
	certPEM []byte                        // PEM of tlsCert's leaf
	slots   chan struct{}                 // concurrent request slots; nil: no cap
	bodies  bodyBudget                    // request body bytes in flight
	wg      sync.WaitGroup                // background goroutines (serve loop, status timers)
	active  requests                      // API requests being served
	conns   connSet                       // accepted connections, closed at shutdown
	closing chan struct{}                 // closed when background work must stop
	held    atomic.Pointer[chan struct{}] // tests: delays end only once this closes (export_test.go)
	closed  atomic.Bool
	reqSeq  atomic.Uint64
	reqBase [8]byte

	metricsHandler func() http.Handler // GET /metrics and /ksp/metrics, built on first use (prometheus.go)
	sigKeys        keyCache            // derived SigV4 signing keys (sigv4.go)
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
	if opts.ConnectionGrace <= 0 {
		opts.ConnectionGrace = time.Second
	}
	if opts.SubscriptionLifetime <= 0 {
		opts.SubscriptionLifetime = defaultSubscriptionLifetime
	}
	if err := opts.edgeDefaults(); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts: opts, store: opts.Store, log: log, now: opts.Now,
		streams: make(map[string]*stream), closing: make(chan struct{}),
		iterKey: make([]byte, 32),
	}
	s.consumers.init()
	s.metricsHandler = sync.OnceValue(s.newMetricsHandler)
	rand.Read(s.iterKey)
	rand.Read(s.reqBase[:])
	if opts.MaxConcurrentRequests > 0 {
		s.slots = make(chan struct{}, opts.MaxConcurrentRequests)
	}
	s.bodies.init(opts.MaxBodyBytesInFlight)
	if err := s.loadTLS(); err != nil {
		return nil, err
	}
	f := opts.Faults
	s.faults.Store(&f)
	had, err := s.loadMeta()
	if err != nil {
		return nil, fmt.Errorf("server: loading metadata (refusing to start): %w", err)
	}
	if !had {
		// A new store: persist its iterator key. An existing store is not
		// written at start, so it opens on a full disk.
		s.metaMu.Lock()
		err := s.persist(nil, nil)
		s.metaMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("server: saving metadata of a new store: %w", err)
		}
	}
	return s, nil
}

// Validate reports the first setting that cannot work, touching neither the
// store nor the network. New calls it; a command line calls it before it
// opens a store, to tell a bad flag from a failed start.
func (o Options) Validate() error {
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("server: TLSCertFile and TLSKeyFile go together")
	}
	if o.TLSSelfSigned && o.TLSCertFile != "" {
		return errors.New("server: TLSSelfSigned and TLSCertFile exclude each other")
	}
	for id, secret := range o.Credentials {
		if id == "" || secret == "" {
			return errors.New("server: Credentials need a non-empty access key id and secret")
		}
	}
	return o.Faults.Validate()
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
	ln = s.conns.listen(ln)
	s.http = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       max(s.opts.IdleTimeout, 0),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.tlsCert != nil {
		s.http.Handler = h
		s.http.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{*s.tlsCert},
			NextProtos:   []string{"h2", "http/1.1"},
			MinVersion:   tls.VersionTLS12,
		}
		if err := http2.ConfigureServer(s.http, s.http2Server()); err != nil {
			return fmt.Errorf("server: configuring HTTP/2: %w", err)
		}
		ln = tls.NewListener(ln, s.http.TLSConfig)
	} else {
		// h2c through x/net's handler around ours. The "use of closed network
		// connection" errors of aws-sdk-go-v2 clients over HTTP/1.1, once blamed
		// here on net/http's own h2c (Protocols), are smithy-go's client bug
		// (docs/smithy-http11-bug.md, package sdkhttp), with either server.
		h2 := s.http2Server()
		// ConfigureServer makes Shutdown send GOAWAY to HTTP/2 connections,
		// h2c ones included, so they end once their streams have.
		if err := http2.ConfigureServer(s.http, h2); err != nil {
			return fmt.Errorf("server: configuring HTTP/2: %w", err)
		}
		s.http.Handler = h2c.NewHandler(h, h2)
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

// HTTPHandler is the handler Serve serves: the API behind the edge
// protections (body deadlines and budget, the concurrency cap, signature
// verification), for use in another http.Server (Serve adds h2c or TLS
// around it). Body deadlines need a ResponseWriter that supports
// http.ResponseController's SetReadDeadline, as net/http's and x/net/http2's do.
func (s *Server) HTTPHandler() http.Handler {
	return s.track(http.HandlerFunc(s.serveEdge))
}

// requestCall is the call used to answer a request refused before it was
// routed: only its encoding is known.
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
	if err := f.Validate(); err != nil {
		return err
	}
	s.faults.Store(&f)
	return nil
}

// after runs fn after d in a tracked goroutine, unless the server closes
// first (then fn is skipped). d <= 0 runs fn now, synchronously. Tests may
// hold fn back further (export_test.go).
func (s *Server) after(d time.Duration, fn func()) {
	if d <= 0 {
		fn()
		return
	}
	var held <-chan struct{}
	if h := s.held.Load(); h != nil {
		held = *h
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.closing:
			return
		}
		if held != nil { // a test holds delays: see HoldDelays
			select {
			case <-held:
			case <-s.closing:
				return
			}
		}
		fn()
	}()
}
