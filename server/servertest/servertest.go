// Package servertest starts embedded ksp servers for tests and builds
// aws-sdk-go-v2 clients pointed at them.
//
//	srv := servertest.Start(t, server.Options{})
//	client := servertest.Client(t, srv)
//
// It takes a [TB] rather than a testing.TB, so that tools built on it (ksp
// bench) do not link package testing into their binaries.
package servertest

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
)

// TB is the part of testing.TB the helpers use; *testing.T and *testing.B
// satisfy it.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start runs a server on 127.0.0.1:0 (unless opts.Addr says otherwise) and
// closes it when the test ends.
func Start(t TB, opts server.Options) *server.Server {
	t.Helper()
	if opts.ConnectionGrace == 0 {
		// Over loopback a GOAWAY is read at once: no test waits the
		// 1 s default for each h2c connection at Close.
		opts.ConnectionGrace = 20 * time.Millisecond
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Config returns an AWS config for an endpoint: static dummy credentials, the
// given region, and an HTTP/1.1 client with a connection pool sized for load
// (sdkhttp.NewPooled) and smithy-go's HTTP/1.1 bug worked around
// (sdkhttp.Fix).
func Config(region string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("ksp", "ksp", ""),
		HTTPClient:  sdkhttp.Fix(sdkhttp.NewPooled()),
	}
}

// NewClient builds a Kinesis client for endpoint (for example srv.URL() or a
// peer's URL) that speaks HTTP/1.1, unless an option sets another HTTP
// client. sdkhttp.FixKinesis is applied after optFns.
func NewClient(endpoint, region string, optFns ...func(*kinesis.Options)) *kinesis.Client {
	cfg := Config(region)
	opts := []func(*kinesis.Options){func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) }}
	opts = append(opts, optFns...)
	return kinesis.NewFromConfig(cfg, append(opts, sdkhttp.FixKinesis)...)
}

// Client builds a Kinesis client for srv that speaks HTTP/2 without TLS
// (h2c, prior knowledge), as the Java SDK does with Kinesis. HTTP/1.1 works
// as well (ClientHTTP11); ksp's clients work around smithy-go's HTTP/1.1
// bug (see package sdkhttp), and tests cover both.
func Client(t TB, srv *server.Server, optFns ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	return NewClient(srv.URL(), srv.Region(), append([]func(*kinesis.Options){func(o *kinesis.Options) { o.HTTPClient = h2cClient }}, optFns...)...)
}

// ClientHTTP11 builds a Kinesis client for srv that speaks HTTP/1.1, with a
// connection per concurrent request.
func ClientHTTP11(t TB, srv *server.Server, optFns ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	return NewClient(srv.URL(), srv.Region(), optFns...)
}

// h2cClient is shared so that all h2c test clients of a process multiplex
// on one connection per server, as the Java SDK does.
var h2cClient = sdkhttp.NewH2C()

// ClientLateHTTP11 builds a Kinesis client for srv over LateHTTPClient,
// without sdkhttp's workaround: tests use it to check that code under test
// applies sdkhttp.FixKinesis to each of its calls.
func ClientLateHTTP11(t TB, srv *server.Server, optFns ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	cfg := Config(srv.Region())
	cfg.HTTPClient = LateHTTPClient()
	opts := []func(*kinesis.Options){func(o *kinesis.Options) { o.BaseEndpoint = aws.String(srv.URL()) }}
	return kinesis.NewFromConfig(cfg, append(opts, optFns...)...)
}

// Transports are the ways tests reach a server, by name: h2c, HTTP/1.1, and
// HTTP/1.1 that cuts responses unless the caller applies sdkhttp's fix.
var Transports = []struct {
	Name   string
	Client func(TB, *server.Server, ...func(*kinesis.Options)) *kinesis.Client
}{{"h2c", Client}, {"http1.1", ClientHTTP11}, {"http1.1-late", ClientLateHTTP11}}

// LateHTTPClient returns an HTTP/1.1 client whose connections return from
// each Write 20 ms after sending, and read at most 512 bytes at a time, 1 ms
// apart. Under load, a client goroutine is often descheduled right after it
// sent a request, so that the answer arrives before net/http has finished
// writing; these connections do that every time, so that every request meets
// smithy-go's HTTP/1.1 bug (package sdkhttp) unless the caller applies
// sdkhttp's fix. The client applies none itself.
func LateHTTPClient() *http.Client {
	hc := sdkhttp.NewPooled()
	var d net.Dialer
	hc.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return lateConn{conn}, nil
	}
	return hc
}

type lateConn struct{ net.Conn }

func (c lateConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	time.Sleep(20 * time.Millisecond)
	return n, err
}

func (c lateConn) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return c.Conn.Read(p[:min(len(p), 512)])
}

// NoRetries makes a client surface every error (no SDK retries).
func NoRetries(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

// CreateStream creates a provisioned stream and waits until it is ACTIVE.
func CreateStream(t TB, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("CreateStream %s: %v", name, err)
	}
	if err := WaitActive(ctx, c, name); err != nil {
		t.Fatal(err)
	}
}

// WaitActive polls DescribeStreamSummary until the stream is ACTIVE (at most 30 s).
func WaitActive(ctx context.Context, c *kinesis.Client, name string) error {
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 200*time.Millisecond
	})
	return w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 30*time.Second)
}

// Shards lists every shard of a stream (all ListShards pages).
func Shards(t TB, c *kinesis.Client, name string) []types.Shard {
	t.Helper()
	var out []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(name)}
	for {
		page, err := c.ListShards(context.Background(), in)
		if err != nil {
			t.Fatalf("ListShards %s: %v", name, err)
		}
		out = append(out, page.Shards...)
		if page.NextToken == nil {
			return out
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

// ReadShard reads a shard from TRIM_HORIZON until a GetRecords call returns
// nothing new (or the shard ends), and returns every record.
func ReadShard(t TB, c *kinesis.Client, stream, shardID string) []types.Record {
	t.Helper()
	ctx := context.Background()
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator %s/%s: %v", stream, shardID, err)
	}
	var out []types.Record
	iter := it.ShardIterator
	for iter != nil {
		page, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatalf("GetRecords %s/%s: %v", stream, shardID, err)
		}
		out = append(out, page.Records...)
		if len(page.Records) == 0 {
			break
		}
		iter = page.NextShardIterator
	}
	return out
}
