package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"golang.org/x/net/http2"
)

// safety bounds every wait of these tests; reaching it is a failure, never
// a measurement.
const safety = 30 * time.Second

// stalled is one request of an attacker: headers and a body that sends
// some bytes and then stalls until stop.
type stalled struct {
	pw     *io.PipeWriter
	sent   chan struct{} // closed once the first bytes were taken (or refused)
	status chan int      // the answer's status, 0 when the request failed
}

func (a *stalled) stop() { a.pw.CloseWithError(io.ErrUnexpectedEOF) }

// startStalled sends op to url over client with a body of declared length
// of which only prefix is sent.
func startStalled(client *http.Client, url, op string, length int64, prefix []byte, header http.Header) *stalled {
	pr, pw := io.Pipe()
	a := &stalled{pw: pw, sent: make(chan struct{}), status: make(chan int, 1)}
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	for k, v := range header {
		req.Header[k] = v
	}
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			a.status <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		a.status <- resp.StatusCode
	}()
	go func() {
		defer close(a.sent)
		pw.Write(prefix) // returns once the server took it, or with an error once it refused
	}()
	return a
}

func waitSent(t *testing.T, attackers []*stalled) {
	t.Helper()
	timeout := time.After(safety)
	for _, a := range attackers {
		select {
		case <-a.sent:
		case <-timeout:
			t.Fatal("attackers could not send their first bytes")
		}
	}
}

// h1Client speaks HTTP/1.1 with a connection per concurrent request;
// h2cClient multiplexes HTTP/2 streams over few connections.
func h1Client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 512}}
}

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// wellBehaved runs a client's ordinary calls, without SDK retries: every one
// must succeed.
func wellBehaved(t *testing.T, srv *server.Server, stream string) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []*kinesis.Client{
		servertest.Client(t, srv, servertest.NoRetries),                     // h2c
		servertest.NewClient(srv.URL(), srv.Region(), servertest.NoRetries), // HTTP/1.1
	} {
		for i := range 10 {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("legit")}); err != nil {
				t.Fatalf("a well-behaved PutRecord during the attack: %v", err)
			}
			if _, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
				t.Fatalf("a well-behaved ListStreams during the attack: %v", err)
			}
		}
	}
}

// TestSlowBodiesDoNotDenyService sends many requests that declare a body and
// then stall after a few bytes (or none), over HTTP/1.1 (a connection each)
// and over h2c (two connections carrying many streams), more of them than
// there are request slots. Well-behaved clients are served throughout, the
// stalled bodies hold memory only for what they sent, and the server cuts
// them once they stall past BodyTimeout.
func TestSlowBodiesDoNotDenyService(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clients []*http.Client
		each    int
	}{
		{"HTTP/1.1", []*http.Client{h1Client()}, 48},
		{"h2c", []*http.Client{h2cClient(), h2cClient()}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, server.Options{MaxConcurrentRequests: 8, BodyTimeout: 2 * time.Second, HTTP2MaxConcurrentStreams: 50})
			servertest.CreateStream(t, servertest.Client(t, srv), "s", 1)
			var attackers []*stalled
			for _, cl := range tc.clients {
				for i := range tc.each {
					prefix := []byte(`{"StreamName":"s","Records":[`)
					if i%2 == 0 {
						prefix = nil // headers only
					}
					attackers = append(attackers, startStalled(cl, srv.URL(), "PutRecords", 1<<20, prefix, nil))
				}
			}
			waitSent(t, attackers)

			wellBehaved(t, srv, "s")
			// Nothing was allocated ahead for the declared 1 MiB bodies.
			if got, limit := srv.BodyBytesInFlight(), int64(len(attackers))*4<<10; got > limit {
				t.Fatalf("%d stalled bodies hold %d bytes, more than one first chunk (%d) each", len(attackers), got, limit)
			}
			for _, a := range attackers {
				select {
				case status := <-a.status:
					if status != 0 && status != http.StatusRequestTimeout {
						t.Fatalf("a stalled body was answered %d, want 408 or a reset", status)
					}
				case <-time.After(safety):
					t.Fatal("a stalled body was never cut")
				}
				a.stop()
			}
			waitGauge(t, srv, 0)
		})
	}
}

// waitGauge waits (bounded) until BodyBytesInFlight is want.
func waitGauge(t *testing.T, srv *server.Server, want int64) {
	t.Helper()
	for i := 0; srv.BodyBytesInFlight() != want; i++ {
		if i > 3000 {
			t.Fatalf("BodyBytesInFlight is %d, want %d", srv.BodyBytesInFlight(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLargeBodiesStayWithinBudget sends many large bodies that stop short of
// their declared 15 MiB, over HTTP/1.1 (a connection each) and over h2c (one
// connection): memory stays within MaxBodyBytesInFlight (the old server
// allocated every declared length up front), the bodies past the budget are
// refused with 503, and small calls are still served from the quarter kept
// for them.
func TestLargeBodiesStayWithinBudget(t *testing.T) {
	const budget = 32 << 20
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/1.1", h1Client()}, {"h2c", h2cClient()}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, server.Options{MaxBodyBytesInFlight: budget})
			servertest.CreateStream(t, servertest.Client(t, srv), "s", 1)
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			chunk := make([]byte, 3<<20)
			var attackers []*stalled
			for range 16 { // 16 × 3 MiB sent, 16 × 15 MiB declared
				attackers = append(attackers, startStalled(tc.client, srv.URL(), "PutRecords", 15<<20, chunk, nil))
			}
			waitSent(t, attackers)
			if got := srv.BodyBytesInFlight(); got > budget-budget/4 {
				t.Fatalf("large bodies hold %d bytes, over their three quarters of the %d budget", got, budget)
			}
			wellBehaved(t, srv, "s")
			var during runtime.MemStats
			runtime.ReadMemStats(&during)
			if grown := int64(during.HeapAlloc) - int64(before.HeapAlloc); grown > 3*budget {
				t.Fatalf("the heap grew by %d MiB during the attack, want it near the %d MiB budget", grown>>20, budget>>20)
			}
			refused := 0
			for _, a := range attackers {
				a.stop()
				select {
				case status := <-a.status:
					if status == http.StatusServiceUnavailable {
						refused++
					}
				case <-time.After(safety):
					t.Fatal("an attacker never got an answer")
				}
			}
			if refused == 0 {
				t.Fatal("48 MiB of large bodies against a 24 MiB allowance: none was refused with 503")
			}
			waitGauge(t, srv, 0)
		})
	}
}

// TestBodyTooSlowIsCut checks both body rules: a body that stalls longer
// than BodyTimeout and one that trickles below MinBodyRate are answered 408
// RequestTimeoutException, and their connections closed.
func TestBodyTooSlowIsCut(t *testing.T) {
	srv := servertest.Start(t, server.Options{BodyTimeout: 300 * time.Millisecond, MinBodyRate: 1000})
	for _, tc := range []struct {
		name    string
		trickle bool
	}{{"stall", false}, {"trickle", true}} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialH1(t, srv, 100000, "{")
			done := make(chan struct{})
			if tc.trickle { // 20 bytes a second, never pausing as long as BodyTimeout
				go func() {
					for {
						select {
						case <-done:
							return
						case <-time.After(50 * time.Millisecond):
							if _, err := conn.Write([]byte(" ")); err != nil {
								return
							}
						}
					}
				}()
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			close(done)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("X-Amzn-ErrorType") != kds.ErrCodeRequestTimeout || !strings.Contains(string(body), "arrived too slowly") {
				t.Fatalf("got %d %s %s, want 408 %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body, kds.ErrCodeRequestTimeout)
			}
			// Closed: EOF, or a reset when the server closed with bytes of
			// the trickle still unread (which depends on timing).
			if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the connection of a cut body stays open: %v", err)
			}
		})
	}
}

// TestIdleConnectionsAreClosed opens many keep-alive connections that make
// one call and then idle: well-behaved clients are served meanwhile, and
// every idle connection, HTTP/1.1 and h2c, is closed by the server once idle
// for IdleTimeout.
func TestIdleConnectionsAreClosed(t *testing.T) {
	srv := servertest.Start(t, server.Options{IdleTimeout: 500 * time.Millisecond})
	servertest.CreateStream(t, servertest.Client(t, srv), "s", 1)
	t.Run("HTTP/1.1", func(t *testing.T) {
		var idle []*bufio.Reader
		for range 100 {
			br := bufio.NewReader(dialH1(t, srv, 2, "{}"))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK || resp.Close {
				t.Fatalf("keep-alive request: %d close=%v", resp.StatusCode, resp.Close)
			}
			idle = append(idle, br)
		}
		wellBehaved(t, srv, "s")
		for _, br := range idle {
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("an idle keep-alive connection was not closed: %v", err)
			}
		}
	})
	t.Run("h2c", func(t *testing.T) {
		fr := dialH2C(t, srv)
		for {
			f, err := fr.ReadFrame()
			if err == io.EOF {
				return // closed
			}
			if err != nil {
				t.Fatalf("an idle h2c connection was not closed: %v", err)
			}
			if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
				fr.WriteSettingsAck()
			}
		}
	})
}

// TestHTTP2Limits checks the settings an h2c client is given: the stream
// limit and the flow-control windows of Options.
func TestHTTP2Limits(t *testing.T) {
	srv := servertest.Start(t, server.Options{HTTP2MaxConcurrentStreams: 7, HTTP2StreamWindow: 256 << 10, HTTP2ConnWindow: 512 << 10})
	fr := dialH2C(t, srv)
	var streams, window uint32
	var connWindow uint32
	for connWindow == 0 || streams == 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's settings: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				streams, _ = f.Value(http2.SettingMaxConcurrentStreams)
				window, _ = f.Value(http2.SettingInitialWindowSize)
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				connWindow = 65535 + f.Increment
			}
		}
	}
	if streams != 7 || window != 256<<10 || connWindow != 512<<10 {
		t.Fatalf("h2 settings: %d streams, stream window %d, connection window %d; want 7, %d, %d", streams, window, connWindow, 256<<10, 512<<10)
	}
}

// dialH2C opens a raw h2c connection (prior knowledge) and sends the
// client's preface and settings; the test ends it.
func dialH2C(t *testing.T, srv *server.Server) *http2.Framer {
	t.Helper()
	conn := dial(t, srv)
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

// dialH1 opens a raw HTTP/1.1 connection and sends a ListStreams request
// declaring length bytes of body, of which it sends body; the test ends it.
func dialH1(t *testing.T, srv *server.Server, length int, body string) net.Conn {
	t.Helper()
	conn := dial(t, srv)
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Length: %d\r\n\r\n%s", length, body)
	return conn
}

// dial opens a TCP connection to srv, closed when the test ends, every read
// and write bounded by safety.
func dial(t *testing.T, srv *server.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(safety))
	return conn
}
