package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

// transports are the two every SubscribeToShard test runs over.
var transports = []string{"http1", "h2c"}

// efoClient builds a client for srv over a transport. Each subscription
// needs a client of its own: aws-sdk-go-v2 (kinesis v1.56.13, smithy-go
// v1.28.9) decodes every event stream of a client with one shared codec and
// buffer, a data race between concurrent subscriptions of one client.
//
// Over HTTP/1.1 the client carries sdkhttp's fix (as servertest's clients
// do): smithy-go closes its request body as soon as the response headers
// arrive, and an event stream answers at once, so without the fix the
// transport's write loop can fail on the closed body and close the
// connection mid-stream ("use of closed network connection").
func efoClient(t *testing.T, srv *server.Server, transport string) *kinesis.Client {
	if transport == "http1" {
		return servertest.ClientHTTP11(t, srv, servertest.NoRetries)
	}
	return servertest.Client(t, srv, servertest.NoRetries)
}

func streamARN(srv *server.Server, name string) string {
	return kds.StreamARN(srv.Region(), srv.Account(), name)
}

// registerConsumer registers a consumer and returns its ARN.
func registerConsumer(t *testing.T, c *kinesis.Client, streamARN, name string) string {
	t.Helper()
	out, err := c.RegisterStreamConsumer(context.Background(), &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer %s: %v", name, err)
	}
	return aws.ToString(out.Consumer.ConsumerARN)
}

// efoServer is where subscribe connects, and how.
type efoServer struct {
	srv       *server.Server
	transport string
}

// efoSetup starts a server with stream "s" of one shard and its consumer
// "app", and returns a client over transport, where to subscribe, and the
// consumer's ARN.
func efoSetup(t *testing.T, transport string, opts server.Options) (*kinesis.Client, efoServer, string) {
	t.Helper()
	srv := servertest.Start(t, opts)
	c := efoClient(t, srv, transport)
	servertest.CreateStream(t, c, "s", 1)
	return c, efoServer{srv, transport}, registerConsumer(t, c, streamARN(srv, "s"), "app")
}

// subscription reads one SubscribeToShard event stream.
type subscription struct {
	t      *testing.T
	stream *kinesis.SubscribeToShardEventStream
}

func subscribe(t *testing.T, c efoServer, consumerARN, shardID string, pos types.StartingPosition) *subscription {
	t.Helper()
	out, err := efoClient(t, c.srv, c.transport).SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumerARN), ShardId: aws.String(shardID), StartingPosition: &pos})
	if err != nil {
		t.Fatalf("SubscribeToShard %s: %v", shardID, err)
	}
	s := &subscription{t: t, stream: out.GetStream()}
	t.Cleanup(func() { s.stream.Close() })
	return s
}

// hangGuard bounds every wait of these tests, so a bug fails instead of hanging.
const hangGuard = 20 * time.Second

// next returns the next SubscribeToShardEvent; ok is false when the stream ended.
func (s *subscription) next() (ev types.SubscribeToShardEvent, ok bool) {
	s.t.Helper()
	select {
	case e, open := <-s.stream.Events():
		if !open {
			return ev, false
		}
		m, isEvent := e.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			s.t.Fatalf("unexpected event %T", e)
		}
		return m.Value, true
	case <-time.After(hangGuard):
		s.t.Fatal("no event")
	}
	return ev, false
}

// records reads events until n records have arrived and returns them with the last event.
func (s *subscription) records(n int) ([]types.Record, types.SubscribeToShardEvent) {
	s.t.Helper()
	var out []types.Record
	var last types.SubscribeToShardEvent
	for len(out) < n {
		ev, ok := s.next()
		if !ok {
			s.t.Fatalf("stream ended after %d of %d records: %v", len(out), n, s.stream.Err())
		}
		out = append(out, ev.Records...)
		last = ev
	}
	if len(out) != n {
		s.t.Fatalf("got %d records, want %d", len(out), n)
	}
	return out, last
}

// end reads until the stream ends and returns its error.
func (s *subscription) end() error {
	s.t.Helper()
	for {
		if _, ok := s.next(); !ok {
			return s.stream.Err()
		}
	}
}

func put(t *testing.T, c *kinesis.Client, stream string, data ...string) []string {
	t.Helper()
	var seqs []string
	for _, d := range data {
		out, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(d), Data: []byte(d)})
		if err != nil {
			t.Fatalf("PutRecord: %v", err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	return seqs
}

func wantData(t *testing.T, recs []types.Record, want ...string) {
	t.Helper()
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Data))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("records %v, want %v", got, want)
	}
}

var trimHorizon = types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}

// TestSubscribeToShard: the SDK reads the initial response, records pushed
// as they are committed, continuation numbers and MillisBehindLatest, from
// every starting position, over HTTP/1.1 and h2c.
func TestSubscribeToShard(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			clock := &testClock{t: time.Now()}
			c, es, arn := efoSetup(t, name, server.Options{Now: clock.Now})
			shard := "shardId-000000000000"
			seqs := put(t, c, "s", "a", "b", "c")

			sub := subscribe(t, es, arn, shard, trimHorizon)
			recs, ev := sub.records(3)
			wantData(t, recs, "a", "b", "c")
			if got := aws.ToString(ev.ContinuationSequenceNumber); got != seqs[2] {
				t.Fatalf("ContinuationSequenceNumber %s, want the last record's %s", got, seqs[2])
			}
			if aws.ToInt64(ev.MillisBehindLatest) != 0 {
				t.Fatalf("MillisBehindLatest %d after reading everything", aws.ToInt64(ev.MillisBehindLatest))
			}
			// Records put now are pushed to the open subscription.
			later := put(t, c, "s", "d", "e")
			recs, ev = sub.records(2)
			wantData(t, recs, "d", "e")
			if aws.ToString(ev.ContinuationSequenceNumber) != later[1] {
				t.Fatalf("ContinuationSequenceNumber %s, want %s", aws.ToString(ev.ContinuationSequenceNumber), later[1])
			}
			all := append(seqs, later...)

			for _, tc := range []struct {
				pos  types.StartingPosition
				want []string
			}{
				{types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(all[1])}, []string{"b", "c", "d", "e"}},
				{types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(all[1])}, []string{"c", "d", "e"}},
				{types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(clock.Now().Add(-time.Hour))}, []string{"a", "b", "c", "d", "e"}},
			} {
				clock.Add(5 * time.Second) // past the 5 s rule: each takes over the last
				recs, _ := subscribe(t, es, arn, shard, tc.pos).records(len(tc.want))
				wantData(t, recs, tc.want...)
			}
			// LATEST: an event reporting the position at once, then only new records.
			clock.Add(5 * time.Second)
			sub = subscribe(t, es, arn, shard, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
			ev, _ = sub.next()
			if len(ev.Records) != 0 || aws.ToString(ev.ContinuationSequenceNumber) != all[4] {
				t.Fatalf("LATEST first event: %d records, continuation %s; want none and %s", len(ev.Records), aws.ToString(ev.ContinuationSequenceNumber), all[4])
			}
			put(t, c, "s", "f")
			recs, _ = sub.records(1)
			wantData(t, recs, "f")

			// Five subscriptions delivered 5+4+3+5+1 records, 18 bytes of
			// data and 18 of partition key (each record is its own key).
			sm := es.srv.Metrics().Stream("s")
			for name, want := range map[string]float64{
				metrics.SubscribeToShardSuccess:      5,
				metrics.SubscribeToShardEventRecords: 18,
				metrics.SubscribeToShardEventBytes:   36,
				metrics.GetRecordsRecords:            0,
			} {
				if got := sm.Counters[name]; got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			if got := sm.Shards[0].Counters[metrics.OutgoingRecords]; got != 18 {
				t.Errorf("shard OutgoingRecords = %v, want 18", got)
			}
		})
	}
}

// TestSubscribeToShardMillisBehindLatest: an event that does not reach the
// end of the shard says how far behind it is.
func TestSubscribeToShardMillisBehindLatest(t *testing.T) {
	clock := &testClock{t: time.Now()}
	srv := servertest.Start(t, server.Options{Now: clock.Now, DisableLimits: true})
	c := servertest.Client(t, srv, servertest.NoRetries)
	es := efoServer{srv, "h2c"}
	servertest.CreateStream(t, c, "s", 1)
	arn := registerConsumer(t, c, streamARN(srv, "s"), "app")
	// Two puts a minute apart, each larger than half an event, so the first
	// event holds only the first.
	big := bytes.Repeat([]byte("x"), 700<<10)
	for i := 0; i < 2; i++ {
		if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: big}); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Minute)
	}
	sub := subscribe(t, es, arn, "shardId-000000000000", trimHorizon)
	ev, _ := sub.next()
	if len(ev.Records) != 1 || aws.ToInt64(ev.MillisBehindLatest) != time.Minute.Milliseconds() {
		t.Fatalf("first event: %d records, %d ms behind; want 1 and 60000", len(ev.Records), aws.ToInt64(ev.MillisBehindLatest))
	}
	ev, _ = sub.next()
	if len(ev.Records) != 1 || aws.ToInt64(ev.MillisBehindLatest) != 0 {
		t.Fatalf("second event: %d records, %d ms behind; want 1 and 0", len(ev.Records), aws.ToInt64(ev.MillisBehindLatest))
	}
}

// TestSubscribeToShardChildShards: a subscription to a shard that is split
// or merged delivers its last records, then ChildShards, then ends.
func TestSubscribeToShardChildShards(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, server.Options{})
			c := efoClient(t, srv, name)
			es := efoServer{srv, name}
			ctx := context.Background()
			servertest.CreateStream(t, c, "split", 1)
			servertest.CreateStream(t, c, "merge", 2)
			splitARN := registerConsumer(t, c, streamARN(srv, "split"), "app")
			mergeARN := registerConsumer(t, c, streamARN(srv, "merge"), "app")

			sub := subscribe(t, es, splitARN, "shardId-000000000000", trimHorizon)
			put(t, c, "split", "a")
			sub.records(1)
			if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("split"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
				t.Fatal(err)
			}
			ev := lastEvent(t, sub)
			checkChildren(t, ev, "shardId-000000000001:shardId-000000000000", "shardId-000000000002:shardId-000000000000")

			subs := []*subscription{
				subscribe(t, es, mergeARN, "shardId-000000000000", trimHorizon),
				subscribe(t, es, mergeARN, "shardId-000000000001", trimHorizon),
			}
			if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("merge"), ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
				t.Fatal(err)
			}
			for _, sub := range subs {
				checkChildren(t, lastEvent(t, sub), "shardId-000000000002:shardId-000000000000,shardId-000000000001")
			}
		})
	}
}

// lastEvent reads to the end of a stream that must end cleanly, and returns its last event.
func lastEvent(t *testing.T, sub *subscription) types.SubscribeToShardEvent {
	t.Helper()
	var last types.SubscribeToShardEvent
	for {
		ev, ok := sub.next()
		if !ok {
			if err := sub.stream.Err(); err != nil {
				t.Fatalf("stream ended with %v", err)
			}
			return last
		}
		last = ev
	}
}

// checkChildren compares an event's ChildShards with "child:parent,parent" entries.
func checkChildren(t *testing.T, ev types.SubscribeToShardEvent, want ...string) {
	t.Helper()
	var got []string
	for _, cs := range ev.ChildShards {
		got = append(got, aws.ToString(cs.ShardId)+":"+strings.Join(cs.ParentShards, ","))
		if cs.HashKeyRange == nil || cs.HashKeyRange.StartingHashKey == nil {
			t.Fatalf("child %s without a hash key range", aws.ToString(cs.ShardId))
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ChildShards %v, want %v", got, want)
	}
	if ev.ContinuationSequenceNumber == nil {
		t.Fatal("the last event has no ContinuationSequenceNumber")
	}
}

// TestSubscribeToShardLifetime: a subscription ends cleanly at the end of
// its lifetime (shortened here), and a new one continues where it stopped.
func TestSubscribeToShardLifetime(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			clock := &testClock{t: time.Now()}
			c, es, arn := efoSetup(t, name, server.Options{Now: clock.Now, SubscriptionLifetime: 100 * time.Millisecond})
			put(t, c, "s", "a")
			sub := subscribe(t, es, arn, "shardId-000000000000", trimHorizon)
			_, ev := sub.records(1)
			if err := sub.end(); err != nil {
				t.Fatalf("the subscription ended with %v, want a clean end", err)
			}
			put(t, c, "s", "b")
			clock.Add(5 * time.Second)
			recs, _ := subscribe(t, es, arn, "shardId-000000000000", types.StartingPosition{
				Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: ev.ContinuationSequenceNumber,
			}).records(1)
			wantData(t, recs, "b")
		})
	}
}

// TestSubscribeToShardConcurrent: within 1 s of a call another is
// LimitExceededException; within 5 s of a successful subscribe a second one
// is ResourceInUseException; 5 s later it takes over and the first stream
// ends with ResourceInUseException.
func TestSubscribeToShardConcurrent(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			clock := &testClock{t: time.Now()}
			c, es, arn := efoSetup(t, name, server.Options{Now: clock.Now})
			shard := "shardId-000000000000"
			first := subscribe(t, es, arn, shard, trimHorizon)
			again := func() error {
				_, err := c.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String(shard), StartingPosition: &trimHorizon})
				return err
			}
			clock.Add(500 * time.Millisecond)
			wantCode(t, again(), kds.ErrCodeLimitExceeded, "one SubscribeToShard call per second")
			clock.Add(3500 * time.Millisecond)
			wantCode(t, again(), kds.ErrCodeResourceInUse, "Another active subscription exists for this consumer")
			clock.Add(time.Second)
			second := subscribe(t, es, arn, shard, trimHorizon)
			wantCode(t, first.end(), kds.ErrCodeResourceInUse, "took over")
			put(t, c, "s", "a")
			recs, _ := second.records(1)
			wantData(t, recs, "a")
		})
	}
}

// TestSubscribeToShardEndsWhenDeleted: deregistering the consumer or
// deleting the stream ends its subscriptions with ResourceNotFoundException.
func TestSubscribeToShardEndsWhenDeleted(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	c := servertest.Client(t, srv, servertest.NoRetries)
	es := efoServer{srv, "h2c"}
	ctx := context.Background()
	servertest.CreateStream(t, c, "s", 1)
	arn := registerConsumer(t, c, streamARN(srv, "s"), "app")
	sub := subscribe(t, es, arn, "shardId-000000000000", trimHorizon)
	if _, err := c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, sub.end(), kds.ErrCodeResourceNotFound, "deregistered")

	arn = registerConsumer(t, c, streamARN(srv, "s"), "app2")
	sub = subscribe(t, es, arn, "shardId-000000000000", trimHorizon)
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, sub.end(), kds.ErrCodeResourceNotFound, "deleted")
	_, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
	wantCode(t, err, kds.ErrCodeResourceNotFound)
}

// TestSubscribeToShardDisconnect: a client that goes away mid-stream ends
// its subscription's handler (nothing is left running for it).
func TestSubscribeToShardDisconnect(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			c, es, arn := efoSetup(t, name, server.Options{})
			srv := es.srv
			sub := subscribe(t, es, arn, "shardId-000000000000", trimHorizon)
			put(t, c, "s", "a")
			sub.records(1)
			// Only the subscription: the put's handler may still be on its
			// way out after its answer reached the client.
			waitFor(t, "the subscription the only request being served", func() bool { return srv.ActiveRequests() == 1 })
			sub.stream.Close()
			waitFor(t, "the subscription's handler to return", func() bool { return srv.ActiveRequests() == 0 })
		})
	}
}

// liveHeap returns the bytes of live heap objects. Two collections: what
// sync.Pools hold survives the first.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// waitFor polls cond (bounded by hangGuard).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", hangGuard, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubscriberThatStopsReading: subscribers that never read their stream
// (over HTTP/1.1 and h2c) slow neither puts nor another subscriber, hold no
// concurrency slot, leave the heap flat (within a bound far below what goes
// past them) once they are full, and do not keep Shutdown waiting.
func TestSubscriberThatStopsReading(t *testing.T) {
	// A disk store keeps the records off the heap, so what the heap gains
	// is what the server (and this process's clients) buffer.
	disk := openDisk(t, t.TempDir(), store.DiskOptions{Fsync: store.FsyncNever})
	srv, err := server.New(server.Options{Store: disk, DisableLimits: true, MaxConcurrentRequests: 2, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := servertest.Client(t, srv, servertest.NoRetries)
	es := efoServer{srv, "h2c"}
	ctx := context.Background()
	servertest.CreateStream(t, c, "s", 1)
	reader := registerConsumer(t, c, streamARN(srv, "s"), "reader")

	// Two stalled subscribers, raw requests whose bodies are never read: one
	// over HTTP/1.1 on a connection with a small receive buffer (so little
	// fills it), one over h2c (its client grants a 4 MiB stream window).
	small := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return conn, err
	}}
	defer small.CloseIdleConnections()
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{Protocols: &protocols}
	defer h2c.CloseIdleConnections()
	for i, tr := range []*http.Transport{small, h2c} {
		staller := registerConsumer(t, c, streamARN(srv, "s"), fmt.Sprintf("stalled-%d", i))
		body := fmt.Sprintf(`{"ConsumerARN":%q,"ShardId":"shardId-000000000000","StartingPosition":{"Type":"TRIM_HORIZON"}}`, staller)
		req, _ := http.NewRequest(http.MethodPost, srv.URL(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
			t.Fatalf("SubscribeToShard over %s answered %s %s", resp.Proto, resp.Status, resp.Header.Get("Content-Type"))
		}
	}

	sub := subscribe(t, es, reader, "shardId-000000000000", trimHorizon)
	// 6 MiB fill what either stalled subscriber can take in (the HTTP/1.1
	// socket, the h2c client's 4 MiB stream window); the heap is measured
	// then, and after 6 MiB more have gone past them.
	const puts, size = 16, 800 << 10
	data := bytes.Repeat([]byte("x"), size)
	var before int64
	for i := 0; i < puts; i++ {
		if i == puts/2 {
			before = liveHeap()
		}
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: data}); err != nil {
			t.Fatalf("put %d with a stalled subscriber: %v", i, err)
		}
		if i%4 == 3 {
			sub.records(4) // the reading subscriber keeps up
		}
	}
	// A stalled subscription holds about one event (1 MiB of records, read
	// and encoded) whatever goes past it. A server that queued what the
	// stalled subscribers did not read would hold 6 MiB more for each,
	// more once encoded.
	const bound = 4 << 20
	grown := liveHeap() - before
	t.Logf("live heap grew by %.1f MiB", float64(grown)/(1<<20))
	if grown > bound {
		t.Fatalf("the live heap grew by %.1f MiB while %d MiB more went past two stalled subscribers; want at most %d MiB",
			float64(grown)/(1<<20), puts/2*size>>20, bound>>20)
	}
	// Shutdown ends the subscriptions: the stalled ones' writes are cut.
	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		t.Fatalf("Shutdown with a stalled subscriber: %v", err)
	}
}

// TestSubscriptionOutlivesEdgeDeadlines: a healthy subscription that waits
// longer than the idle and body timeouts still gets the records put later.
func TestSubscriptionOutlivesEdgeDeadlines(t *testing.T) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, server.Options{IdleTimeout: 50 * time.Millisecond, BodyTimeout: 50 * time.Millisecond})
			// Everything but the subscription goes over a new connection
			// per request: a pooled one idle for 50 ms may be closed by the
			// server just as a request goes out on it, a race of the idle
			// timeout, not of what this test is about.
			c := servertest.Client(t, srv, func(o *kinesis.Options) {
				o.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			})
			servertest.CreateStream(t, c, "s", 1)
			es := efoServer{srv, name}
			arn := registerConsumer(t, c, streamARN(srv, "s"), "app")
			sub := subscribe(t, es, arn, "shardId-000000000000", trimHorizon)
			time.Sleep(300 * time.Millisecond) // six idle and body timeouts
			put(t, c, "s", "late")
			recs, _ := sub.records(1)
			wantData(t, recs, "late")
		})
	}
}

// TestSubscribeToShardCBOR: a CBOR request (as the Java SDK sends) gets
// CBOR event payloads: blobs as byte strings, timestamps as epoch millis.
func TestSubscribeToShardCBOR(t *testing.T) {
	c, es, arn := efoSetup(t, "h2c", server.Options{})
	put(t, c, "s", "a")
	body, _ := cbor.Marshal(map[string]any{"ConsumerARN": arn, "ShardId": "shardId-000000000000", "StartingPosition": map[string]any{"Type": "TRIM_HORIZON"}})
	req, _ := http.NewRequest(http.MethodPost, es.srv.URL(), bytes.NewReader(body))
	req.Header.Set("Content-Type", ctCBOR)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := eventstream.NewDecoder()
	var kinds []string
	var event struct {
		ContinuationSequenceNumber string
		Records                    []struct {
			Data                        []byte
			ApproximateArrivalTimestamp cbor.Tag
		}
	}
	for len(kinds) < 2 {
		msg, err := dec.Decode(resp.Body, nil)
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, msg.Headers.Get(":event-type").String())
		if len(kinds) == 2 {
			if err := cbor.Unmarshal(msg.Payload, &event); err != nil {
				t.Fatalf("event payload is not CBOR: %v", err)
			}
		}
	}
	if fmt.Sprint(kinds) != "[initial-response SubscribeToShardEvent]" {
		t.Fatalf("event types %v", kinds)
	}
	if len(event.Records) != 1 || string(event.Records[0].Data) != "a" || event.Records[0].ApproximateArrivalTimestamp.Number != 1 || event.ContinuationSequenceNumber == "" {
		t.Fatalf("CBOR event %+v", event)
	}
}

// TestConnectionAfterSubscription: the HTTP/1.1 connection that carried a
// subscription does not carry the subscription's end (its cut-off write
// deadline) into the client's next call.
func TestConnectionAfterSubscription(t *testing.T) {
	_, es, arn := efoSetup(t, "http1", server.Options{SubscriptionLifetime: 50 * time.Millisecond})
	c := efoClient(t, es.srv, "http1")
	out, err := c.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"), StartingPosition: &trimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	sub := &subscription{t: t, stream: out.GetStream()}
	if err := sub.end(); err != nil {
		t.Fatalf("the subscription ended with %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // past the 1 s a cut-off write is given
	var reused bool
	trace := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	if _, err := c.ListStreams(trace, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("the next call on the same client: %v", err)
	}
	if !reused {
		t.Fatal("the client did not reuse the subscription's connection: nothing was tested")
	}
}
