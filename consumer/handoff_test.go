package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/kcltable"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// indexQueries counts the Queries sent to the LeaseOwnerToLeaseKeyIndex.
type indexQueries struct{ n atomic.Int64 }

func (q *indexQueries) Do(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".Query") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"IndexName":"LeaseOwnerToLeaseKeyIndex"`)) {
			q.n.Add(1)
		}
	}
	return http.DefaultClient.Do(req)
}

// Two ksp workers on a lease table in dynalite, next to the tables a KCL
// 3.0–3.4 application keeps (worker metrics, coordinator state): the second
// worker asks the first for one of its two leases, the first finishes its
// batch, checkpoints and lets go, the second takes it, found in its next
// scan of the table (the scan it balances from: no query of the
// LeaseOwnerToLeaseKeyIndex on top, which only a worker following a KCL 3.x
// leader needs). No record is processed twice, and the KCL's other tables
// are untouched.
func TestGracefulHandOffOnDynalite(t *testing.T) {
	t.Parallel()
	const app, stream = "handoff-app", "handoff"
	queries := &indexQueries{}
	client, store := dynaliteTableVia(t, app, queries)
	legacy := kcltable.LegacyTables(app, "java-1", "java-2")
	for name, tbl := range legacy {
		if _, err := client.CreateTable(bg, &dynamodb.CreateTableInput{
			TableName:            aws.String(name),
			KeySchema:            []ddb.KeySchemaElement{{AttributeName: aws.String(tbl.HashKey), KeyType: ddb.KeyTypeHash}},
			AttributeDefinitions: []ddb.AttributeDefinition{{AttributeName: aws.String(tbl.HashKey), AttributeType: ddb.ScalarAttributeTypeS}},
			BillingMode:          ddb.BillingModePayPerRequest,
		}); err != nil {
			t.Fatal(err)
		}
		if err := dynamodb.NewTableExistsWaiter(client).Wait(bg, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 10*time.Second, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 10 * time.Millisecond
		}); err != nil {
			t.Fatal(err)
		}
		for _, it := range tbl.Items {
			if _, err := client.PutItem(bg, &dynamodb.PutItemInput{TableName: aws.String(name), Item: it}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, kc := startServer(t, server.Options{})
	servertest.CreateStream(t, kc, stream, 2)
	prod := newProducer(kc, stream, 8)
	stopPut := prod.background(t, 20*time.Millisecond)
	defer stopPut()
	sk := newSink()
	steals := &stealHook{}
	opts := func(id string) []consumer.Option {
		// 2 s failover: no healthy lease may expire under -race on a busy
		// machine, or its take-over would replay records.
		return append(fast(stream, kc, store, id), consumer.WithHandler(sk.handler(id)), consumer.WithHooks(steals),
			consumer.WithFailoverTime(2*time.Second))
	}
	start(t, opts("ksp-1")...)
	waitFor(t, 20*time.Second, "ksp-1 holding both leases", func() bool { return owners(t, store)["ksp-1"] == 2 })
	start(t, opts("ksp-2")...)
	waitFor(t, 30*time.Second, "one lease handed over to ksp-2", func() bool {
		steals.mu.Lock()
		moved := steals.stolen
		steals.mu.Unlock()
		o := owners(t, store)
		return moved >= 1 && o["ksp-1"] == 1 && o["ksp-2"] == 1
	})
	stopPut()
	waitFor(t, 20*time.Second, "every record", func() bool { return sk.unique() == prod.total() })
	sk.checkOrder(t, prod.total())
	if d := sk.duplicates(); d != 0 {
		t.Fatalf("%d records replayed across a graceful hand-off", d)
	}
	if n := queries.n.Load(); n != 0 {
		t.Fatalf("workers queried the LeaseOwnerToLeaseKeyIndex %d times on top of their scans", n)
	}
	out, err := client.DescribeTable(bg, &dynamodb.DescribeTableInput{TableName: aws.String(app)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Table.GlobalSecondaryIndexes) != 1 || aws.ToString(out.Table.GlobalSecondaryIndexes[0].IndexName) != "LeaseOwnerToLeaseKeyIndex" {
		t.Fatalf("lease table GSIs = %+v, want LeaseOwnerToLeaseKeyIndex", out.Table.GlobalSecondaryIndexes)
	}
	for name, tbl := range legacy {
		scan, err := client.Scan(bg, &dynamodb.ScanInput{TableName: aws.String(name), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatalf("the KCL's table %s: %v", name, err)
		}
		if len(scan.Items) != len(tbl.Items) {
			t.Fatalf("table %s holds %d items, want its %d", name, len(scan.Items), len(tbl.Items))
		}
		for _, want := range tbl.Items {
			found := false
			for _, got := range scan.Items {
				found = found || reflect.DeepEqual(got, want)
			}
			if !found {
				t.Errorf("table %s lost or changed item %v", name, want[tbl.HashKey])
			}
		}
	}
}

// logged collects log messages.
type logged struct {
	mu   sync.Mutex // guards: msgs
	msgs []string
}

func (l *logged) Enabled(context.Context, slog.Level) bool { return true }
func (l *logged) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logged) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logged) WithGroup(string) slog.Handler      { return l }

func (l *logged) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// stuckProc never finishes a batch until its context ends, and counts the
// batches cancelled that way.
type stuckProc struct{ cancelled *atomic.Int64 }

func (p stuckProc) Initialize(context.Context, consumer.InitializeInput) error { return nil }
func (p stuckProc) ProcessRecords(ctx context.Context, _ consumer.ProcessRecordsInput) error {
	<-ctx.Done()
	p.cancelled.Add(1)
	return ctx.Err()
}
func (p stuckProc) ShardEnded(context.Context, consumer.ShardEndedInput) error { return nil }
func (p stuckProc) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	return nil
}
func (p stuckProc) LeaseLost(context.Context, consumer.LeaseLostInput) {}

// A holder whose processor never finishes its batch is asked for a lease:
// after the hand-off timeout it cancels the processor and lets go, and the
// worker that asked takes the lease. Its other lease stays.
func TestHandOffTimeoutHolderLetsGo(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	servertest.CreateStream(t, kc, "stuck", 2)
	prod := newProducer(kc, "stuck", 8)
	prod.round(t)
	store := memory.NewWithTable()
	var cancelled atomic.Int64
	logs := &logged{}
	base := func(id string) []consumer.Option {
		return append(fast("stuck", kc, store, id), consumer.WithFailoverTime(3*time.Second))
	}
	start(t, append(base("holder"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return stuckProc{&cancelled} }),
		consumer.WithLogger(slog.New(logs)), consumer.WithShutdownTimeout(time.Second), consumer.WithHandOffTimeout(300*time.Millisecond))...)
	waitFor(t, 20*time.Second, "the holder holding both leases", func() bool { return owners(t, store)["holder"] == 2 })
	sk := newSink()
	// The asker's own bound is far off, so the holder's is the one that acts.
	start(t, append(base("asker"), consumer.WithHandler(sk.handler("asker")), consumer.WithHandOffTimeout(20*time.Second))...)
	waitFor(t, 20*time.Second, "the asker holding one lease", func() bool {
		o := owners(t, store)
		return o["asker"] == 1 && o["holder"] == 1 && len(mustListHandOffs(t, store)) == 0
	})
	if !logs.has("hand-off timed out: cancelling the processor and letting go") {
		t.Fatal("the holder did not let go on the hand-off timeout")
	}
	if cancelled.Load() != 1 {
		t.Fatalf("%d stuck batches cancelled, want 1 (the lease handed over)", cancelled.Load())
	}
}

// A holder that ignores a hand-off request (as a KCL 2.x worker does: it
// renews on the counter alone and never looks at checkpointOwner) keeps
// renewing; the worker that asked takes the lease once the hand-off timeout
// and a failover time have passed, and the holder's next renewal fails.
func TestHandOffTimeoutTakesFromDeafHolder(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	servertest.CreateStream(t, kc, "deaf", 2)
	store := memory.NewWithTable()
	for _, sh := range servertest.Shards(t, kc, "deaf") {
		if _, err := store.CreateLeaseIfNotExists(bg, lease.Lease{LeaseKey: aws.ToString(sh.ShardId), LeaseOwner: "kcl2", Checkpoint: lease.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}
	// The deaf holder renews every 200 ms until a renewal fails.
	ctx, cancel := context.WithCancel(bg)
	var lostByDeaf atomic.Int64
	var wg sync.WaitGroup
	for _, l := range mustList(t, store) {
		wg.Go(func() {
			counter := l.LeaseCounter
			for ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				nl, err := store.RenewLease(bg, l.LeaseKey, "kcl2", counter)
				if err != nil {
					lostByDeaf.Add(1)
					return
				}
				counter = nl.LeaseCounter
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	logs := &logged{}
	sk := newSink()
	start(t, append(fast("deaf", kc, store, "asker"), consumer.WithHandler(sk.handler("asker")), consumer.WithFailoverTime(time.Second),
		consumer.WithHandOffTimeout(300*time.Millisecond), consumer.WithLogger(slog.New(logs)))...)
	waitFor(t, 20*time.Second, "the asker taking one lease from the deaf holder", func() bool {
		o := owners(t, store)
		return o["asker"] == 1 && len(mustListHandOffs(t, store)) == 0 && lostByDeaf.Load() == 1
	})
	if !logs.has("hand-off timed out: taking the lease from its holder") {
		t.Fatal("the asker did not take the lease on the hand-off timeout")
	}
	for _, l := range mustList(t, store) {
		if l.LeaseOwner == "asker" && l.CheckpointOwner != "" {
			t.Fatalf("taken lease still has checkpointOwner %q", l.CheckpointOwner)
		}
	}
}

// giveBackStore, once armed, holds the reads of the leases a worker gives
// back on shutdown until all of them are in flight together and the
// worker's own shard has been asked to shut down; the read of fail then
// fails.
type giveBackStore struct {
	lease.Store
	armed    atomic.Bool
	reads    int           // the reads to hold together
	fail     string        // the lease key whose read fails
	shutdown chan struct{} // closed when the shard is asked to shut down
	all      chan struct{} // closed when reads are in flight together
	mu       sync.Mutex    // guards: inFlight, most
	inFlight int
	most     int
}

func (s *giveBackStore) GetLease(ctx context.Context, key string) (lease.Lease, error) {
	if !s.armed.Load() {
		return s.Store.GetLease(ctx, key)
	}
	s.mu.Lock()
	s.inFlight++
	s.most = max(s.most, s.inFlight)
	if s.inFlight == s.reads {
		close(s.all)
	}
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.inFlight--; s.mu.Unlock() }()
	for _, ch := range []chan struct{}{s.all, s.shutdown} {
		select {
		case <-ch:
		case <-ctx.Done():
			return lease.Lease{}, ctx.Err()
		}
	}
	if key == s.fail {
		return lease.Lease{}, errors.New("injected read failure")
	}
	return s.Store.GetLease(ctx, key)
}

// shutdownSignal is a processor that closes requested when it is asked to
// shut down.
type shutdownSignal struct {
	once      *sync.Once
	requested chan struct{}
}

func (p shutdownSignal) Initialize(context.Context, consumer.InitializeInput) error { return nil }
func (p shutdownSignal) ProcessRecords(context.Context, consumer.ProcessRecordsInput) error {
	return nil
}
func (p shutdownSignal) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (p shutdownSignal) ShutdownRequested(context.Context, consumer.ShutdownRequestedInput) error {
	p.once.Do(func() { close(p.requested) })
	return nil
}
func (p shutdownSignal) LeaseLost(context.Context, consumer.LeaseLostInput) {}

// attrLog collects each log message with its shard_id.
type attrLog struct {
	mu   sync.Mutex // guards: msgs
	msgs []string   // "message shard_id"
}

func (l *attrLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *attrLog) Handle(_ context.Context, r slog.Record) error {
	shard := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "shard_id" {
			shard = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message+" "+shard)
	l.mu.Unlock()
	return nil
}
func (l *attrLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *attrLog) WithGroup(string) slog.Handler      { return l }

// A worker shutting down with three leases on their way to it gives them
// back all at once, while its own shard is being stopped (the store holds
// each read until all three are in flight and the shard was asked to shut
// down), and names the shard whose read failed. The two read back go to
// their holder again; the third waits for its expiry.
func TestShutdownGivesBackHandOffsTogether(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	servertest.CreateStream(t, kc, "giveback", 4)
	mem := memory.NewWithTable()
	var keys []string
	for _, sh := range servertest.Shards(t, kc, "giveback") {
		keys = append(keys, aws.ToString(sh.ShardId))
	}
	// Three leases held by kcl2 and being handed over to w; the fourth is
	// w's, not yet held.
	for i, key := range keys {
		if _, err := mem.CreateLeaseIfNotExists(bg, lease.Lease{LeaseKey: key, LeaseOwner: "kcl2", Checkpoint: lease.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
		var err error
		if i < 3 {
			_, err = mem.HandOffLease(bg, key, "kcl2", "w")
		} else {
			_, err = mem.EvictLease(bg, key, "kcl2")
			if err == nil {
				var l lease.Lease
				l, err = mem.GetLease(bg, key)
				if err == nil {
					_, err = mem.TakeLease(bg, key, "", l.LeaseCounter, "w")
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// kcl2 keeps renewing its three, so none expires while w runs.
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, key := range keys[:3] {
		wg.Go(func() {
			for ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				l, err := mem.GetLease(bg, key)
				if err == nil && l.Holder() == "kcl2" {
					_, _ = mem.RenewLease(bg, key, "kcl2", l.LeaseCounter)
				}
			}
		})
	}

	store := &giveBackStore{Store: mem, reads: 3, fail: keys[2], shutdown: make(chan struct{}), all: make(chan struct{})}
	proc := shutdownSignal{once: &sync.Once{}, requested: store.shutdown}
	logs := &attrLog{}
	taken := &takenHook{}
	w := start(t, append(fast("giveback", kc, store, "w"), consumer.WithProcessor(func(string) consumer.RecordProcessor { return proc }),
		consumer.WithLogger(slog.New(logs)), consumer.WithHooks(taken))...)
	waitFor(t, 20*time.Second, "w holding its own lease", func() bool { return tookAll(taken, keys[3]) })
	store.armed.Store(true)
	w.stop(t)

	store.mu.Lock()
	most := store.most
	store.mu.Unlock()
	if most != 3 {
		t.Fatalf("at most %d of the 3 leases were given back at once, want all 3", most)
	}
	for i, l := range mustList(t, mem) {
		want := [2]string{"kcl2", ""} // given back
		switch i {
		case 2:
			want = [2]string{"w", "kcl2"} // its read failed: it expires
		case 3:
			want = [2]string{"", ""} // released
		}
		if got := [2]string{l.LeaseOwner, l.CheckpointOwner}; got != want {
			t.Errorf("lease %s: owner, checkpointOwner = %q, want %q", l.LeaseKey, got, want)
		}
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if want := "giving back a lease asked for failed; it will expire " + keys[2]; !slices.Contains(logs.msgs, want) {
		t.Errorf("logs %q lack %q", logs.msgs, want)
	}
}
