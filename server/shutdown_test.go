package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// h2cClient speaks HTTP/2 without TLS (prior knowledge), as the Java SDK
// does: the server serves it on a hijacked connection.
func h2cClient() *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protocols}}
}

// startSlow starts a server whose every request takes latency, and one
// CreateStream request in flight on it from client; it returns the
// request's outcome, and false when the request was served before it was
// seen in flight (this goroutine stalled longer than latency between two
// looks): then nothing is in flight.
func startSlow(t *testing.T, client *http.Client, latency time.Duration) (*Server, chan error, bool) {
	t.Helper()
	s, err := New(Options{Faults: Faults{Latency: latency}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(`{"StreamName":"s","ShardCount":1}`))
		req.Header.Set("Content-Type", contentJSON)
		req.Header.Set("X-Amz-Target", targetAPI+".CreateStream")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
		done <- err
	}()
	for i := 0; s.active.count() == 0; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the request failed before it was seen in flight: %v", err)
			}
			done <- err
			return s, done, false
		default:
		}
		if i > 6000 {
			t.Fatal("the request did not arrive within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, done, true
}

// TestShutdownWaitsForRequests: Shutdown lets a request in flight finish,
// over HTTP/1.1 and over h2c (whose connections net/http's Shutdown does not
// see), then refuses connections.
func TestShutdownWaitsForRequests(t *testing.T) {
	t.Parallel()
	for name, client := range map[string]*http.Client{"http1": {Transport: &http.Transport{}}, "h2c": h2cClient()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, done, inFlight := startSlow(t, client, 300*time.Millisecond)
			for try := 1; !inFlight; try++ { // a machine that stalled 300 ms: again, 3 times at most
				if try == 3 {
					t.Fatal("the request was served before it was seen in flight 3 times")
				}
				s.Close()
				s, done, inFlight = startSlow(t, client, 300*time.Millisecond)
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			s.mu.RLock()
			_, created := s.streams["s"]
			s.mu.RUnlock()
			if !created {
				t.Fatal("Shutdown returned before the request in flight had run")
			}
			if err := <-done; err != nil {
				t.Fatalf("request in flight during Shutdown: %v", err)
			}
			if _, err := http.Post(s.URL(), contentJSON, strings.NewReader("{}")); err == nil {
				t.Fatal("a request after Shutdown was served")
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close after Shutdown: %v", err)
			}
		})
	}
}

// TestShutdownGivesUpAtDeadline: a request longer than Shutdown's context is
// cut off; Shutdown says so and the server is closed all the same.
func TestShutdownGivesUpAtDeadline(t *testing.T) {
	t.Parallel()
	s, done, inFlight := startSlow(t, http.DefaultClient, time.Minute)
	if !inFlight {
		t.Fatal("a request that takes a minute was served at once")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the cut-off request succeeded")
	}
	if !s.closed.Load() || s.Shutdown(context.Background()) != nil {
		t.Fatal("the server is not closed after Shutdown gave up")
	}
}

// TestRequestsGate: once closed, the gate admits nothing and reports idle
// when the last admitted request leaves.
func TestRequestsGate(t *testing.T) {
	t.Parallel()
	var g requests
	if !g.enter() || !g.enter() {
		t.Fatal("an open gate refused a request")
	}
	idle := g.close()
	if g.enter() {
		t.Fatal("a closed gate admitted a request")
	}
	g.leave()
	select {
	case <-idle:
		t.Fatal("idle with a request still in flight")
	default:
	}
	g.leave()
	<-idle
	if g.close() != idle {
		t.Fatal("a second close returned another channel")
	}
}

// TestCloseEndsHijackedConnections: an h2c connection whose client never
// hangs up (net/http hijacked it, so its Shutdown cannot see it) is closed
// by the server's Close, so no connection, goroutine or server memory
// outlives the server.
func TestCloseEndsHijackedConnections(t *testing.T) {
	t.Parallel()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The HTTP/2 preface with prior knowledge, then an empty SETTINGS frame.
	if _, err := conn.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := make([]byte, 9)
	if _, err := io.ReadFull(conn, head); err != nil || head[3] != 4 {
		t.Fatalf("first frame %x, %v: want the server's SETTINGS", head, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Whatever the server still sends (GOAWAY), the connection then ends.
	_, err = io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection is still open 10 s after Close")
	}
}
