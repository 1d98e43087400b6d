package consumer_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// Two workers follow two streams with one lease table in dynalite: every
// record of both is processed in order per key, each record names its
// stream, the leases are keyed account:stream:creationEpoch:shardId with
// the stream's account and creation time, split between the workers, and a
// lease of a stream they do not follow is never touched. A split of one
// stream's shard goes as in single-stream mode, under the stream's prefix.
func TestMultiStreamOneLeaseTable(t *testing.T) {
	t.Parallel()
	_, store := dynaliteTable(t, "multi-app")
	_, kc := startServer(t, server.Options{})
	streams := map[string]int32{"ms-a": 2, "ms-b": 1}
	prods := map[string]*producer{}
	ids := map[string]lease.StreamIdentifier{}
	for name, shards := range streams {
		servertest.CreateStream(t, kc, name, shards)
		prods[name] = newProducer(kc, name, 6)
		for range 3 {
			prods[name].round(t)
		}
		sum, err := kc.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		account := strings.Split(aws.ToString(sum.StreamDescriptionSummary.StreamARN), ":")[4]
		ids[name] = lease.StreamIdentifier{AccountID: account, StreamName: name, CreationEpoch: sum.StreamDescriptionSummary.StreamCreationTimestamp.Unix()}
	}
	other := lease.Lease{LeaseKey: "123456789012:not-followed:1:shardId-000000000000", Checkpoint: lease.TrimHorizon}
	if _, err := store.CreateLeaseIfNotExists(bg, other); err != nil {
		t.Fatal(err)
	}

	sk := newSink()
	handler := func(id string) consumer.Handler {
		return func(ctx context.Context, recs []consumer.Record) error {
			// Keys and shard ids repeat across streams: tell them apart.
			tagged := make([]consumer.Record, len(recs))
			for i, r := range recs {
				if _, ok := streams[r.Stream]; !ok {
					return errors.New("record without its stream: " + r.Stream)
				}
				r.ShardID = r.Stream + "/" + r.ShardID
				r.PartitionKey = r.Stream + "/" + r.PartitionKey
				r.Data = []byte(r.Stream + "/" + string(r.Data))
				tagged[i] = r
			}
			sk.add(id, tagged)
			return nil
		}
	}
	for _, id := range []string{"w1", "w2"} {
		start(t, append(fast("", kc, store, id), consumer.WithStreams("ms-a", "ms-b"), consumer.WithHandler(handler(id)),
			consumer.WithFailoverTime(2*time.Second))...)
	}
	total := prods["ms-a"].total() + prods["ms-b"].total()
	waitFor(t, 30*time.Second, "every record of both streams, the leases split 2/1", func() bool {
		o := owners(t, store)
		return sk.unique() == total && ((o["w1"] == 2 && o["w2"] == 1) || (o["w1"] == 1 && o["w2"] == 2))
	})

	// Split ms-b's one shard: the children's leases carry ms-b's prefix and
	// name their parent by shard id, as the KCL's do; the parent's lease goes
	// once both children have begun.
	if _, err := kc.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("ms-b"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(bg, kc, "ms-b"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		prods["ms-b"].round(t)
	}
	total = prods["ms-a"].total() + prods["ms-b"].total()
	bKey := func(shard string) string { return lease.MultiStreamLeaseKey(ids["ms-b"], shard) }
	waitFor(t, 30*time.Second, "every record, and ms-b's parent lease cleaned up", func() bool {
		if sk.unique() != total {
			return false
		}
		_, err := store.GetLease(bg, bKey("shardId-000000000000"))
		return errors.Is(err, lease.ErrLeaseNotFound)
	})
	sk.checkOrder(t, total)

	got := map[string]int{}
	for _, l := range mustList(t, store) {
		if l.LeaseKey == other.LeaseKey {
			if l.LeaseOwner != "" || l.LeaseCounter != 0 {
				t.Fatalf("the lease of a stream not followed was touched: %+v", l)
			}
			continue
		}
		id, shard, err := lease.ParseMultiStreamLeaseKey(l.LeaseKey)
		if err != nil {
			t.Fatalf("lease key %q: %v", l.LeaseKey, err)
		}
		if id != ids[id.StreamName] {
			t.Fatalf("lease key %q: stream identifier %+v, want %+v", l.LeaseKey, id, ids[id.StreamName])
		}
		if !strings.HasPrefix(shard, "shardId-") {
			t.Fatalf("lease key %q: shard %q", l.LeaseKey, shard)
		}
		if id.StreamName == "ms-b" && (len(l.ParentShardIDs) != 1 || l.ParentShardIDs[0] != "shardId-000000000000") {
			t.Fatalf("child lease %q: parents %q, want [shardId-000000000000]", l.LeaseKey, l.ParentShardIDs)
		}
		got[id.StreamName]++
	}
	if got["ms-a"] != 2 || got["ms-b"] != 2 {
		t.Fatalf("leases per stream = %v, want ms-a 2, ms-b 2 (the children)", got)
	}
}

func TestMultiStreamBadOptions(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	h := consumer.WithHandler(func(context.Context, []consumer.Record) error { return nil })
	base := []consumer.Option{consumer.WithKinesis(kc), consumer.WithLeaseStore(memory.NewWithTable()), h}
	for _, tc := range []struct {
		name string
		opts []consumer.Option
		want string
	}{
		{"Neither", nil, "one of WithStream, WithStreams and WithStreamTracker is required"},
		{"Both", []consumer.Option{consumer.WithStream("a"), consumer.WithStreams("b")}, `more than one of WithStream("a"), WithStreams`},
		{"FormerWithOneStream", []consumer.Option{consumer.WithStream("a"), consumer.WithFormerStreamsLeaseDeletion(time.Second)}, "needs multi-stream mode"},
		{"ZeroStreamPosition", []consumer.Option{consumer.WithStreams("a"), consumer.WithStreamInitialPosition("a", consumer.InitialPosition{})}, `initial position of stream "a" is not set`},
		{"ListAndTracker", []consumer.Option{consumer.WithStreams("b"), consumer.WithStreamTracker(func(context.Context) ([]string, error) { return nil, nil })}, "more than one of"},
		{"Twice", []consumer.Option{consumer.WithStreams("a", "a")}, `stream "a" named twice`},
		{"Colon", []consumer.Option{consumer.WithStreams("a:b")}, `stream name "a:b"`},
	} {
		_, err := consumer.New(append(base, tc.opts...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	// A client that can describe streams but not fan out is enough; one that
	// cannot describe them is not.
	if _, err := consumer.New(append(base, consumer.WithKinesis(describerOnly{kc, kc}), consumer.WithStreams("a"))...); err != nil {
		t.Errorf("New with a client that can describe streams: %v", err)
	}
	if _, err := consumer.New(append(base, consumer.WithKinesis(pollOnly{kc}), consumer.WithStreams("a"))...); err == nil ||
		!strings.Contains(err.Error(), "does not implement StreamDescriber") {
		t.Errorf("New with a client that cannot describe streams: %v", err)
	}
	// A stream that does not exist: Run says so and takes nothing.
	store := memory.NewWithTable()
	c, err := consumer.New(consumer.WithKinesis(kc), consumer.WithLeaseStore(store), h, consumer.WithStreams("missing"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(bg); err == nil || !strings.Contains(err.Error(), "describing stream missing") {
		t.Fatalf("Run on a missing stream = %v", err)
	}
}

// A stream tracker's list changes while one worker runs: a stream added is
// followed from its start, a stream removed is let go of (its shard
// checkpoints and releases its lease, which is then left alone) and its
// new records are not processed.
func TestStreamTrackerFollowsChanges(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	prods := streamsWith(t, kc, 1, "tr-a", "tr-b")
	store := memory.NewWithTable()
	var list atomic.Value
	list.Store([]string{"tr-a"})
	tracker := func(context.Context) ([]string, error) { return list.Load().([]string), nil }
	ps := &perStream{}
	count := ps.count
	rounds := &roundCounter{}
	start(t, append(fast("", kc, store, "w1"), consumer.WithStreamTracker(tracker), consumer.WithHandler(ps.handler), consumer.WithHooks(rounds))...)
	waitFor(t, 20*time.Second, "tr-a's records", func() bool { return count("tr-a") == prods["tr-a"].total() })
	if n := count("tr-b"); n != 0 || len(mustList(t, store)) != 1 {
		t.Fatalf("before tr-b is tracked: %d of its records processed, %d leases; want 0 and tr-a's one", n, len(mustList(t, store)))
	}

	list.Store([]string{"tr-a", "tr-b"})
	waitFor(t, 20*time.Second, "tr-b's records once tracked", func() bool { return count("tr-b") == prods["tr-b"].total() })

	list.Store([]string{"tr-b"})
	waitFor(t, 20*time.Second, "tr-a's lease released", func() bool {
		for _, l := range mustList(t, store) {
			if strings.Contains(l.LeaseKey, ":tr-a:") {
				return l.LeaseOwner == ""
			}
		}
		return false
	})
	before := count("tr-a")
	prods["tr-a"].round(t)
	prods["tr-b"].round(t)
	waitFor(t, 20*time.Second, "tr-b's new records", func() bool { return count("tr-b") == prods["tr-b"].total() })
	rounds.wait(t, 12) // two failover times of chances to take tr-a's lease
	if n := count("tr-a"); n != before {
		t.Fatalf("%d records of tr-a processed after it stopped being tracked", n-before)
	}
	for _, l := range mustList(t, store) {
		if strings.Contains(l.LeaseKey, ":tr-a:") && l.LeaseOwner != "" {
			t.Fatalf("tr-a's lease taken by %q after it stopped being tracked", l.LeaseOwner)
		}
	}
	if o := owners(t, store); o["w1"] != 1 {
		t.Fatalf("owners = %v, want w1 holding tr-b's lease only", o)
	}
}

// With WithFormerStreamsLeaseDeletion, the leases of a stream dropped from
// the tracker's list (and of any other stream the worker does not follow)
// are deleted once the wait has passed; the followed stream's stay.
func TestFormerStreamsLeasesDeleted(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	streamsWith(t, kc, 1, "fs-a", "fs-b")
	store := memory.NewWithTable()
	stranger := lease.Lease{LeaseKey: "123456789012:gone-long-ago:1:shardId-000000000000", Checkpoint: lease.TrimHorizon}
	if _, err := store.CreateLeaseIfNotExists(bg, stranger); err != nil {
		t.Fatal(err)
	}
	var list atomic.Value
	list.Store([]string{"fs-a", "fs-b"})
	ps := &perStream{}
	start(t, append(fast("", kc, store, "w1"), consumer.WithStreamTracker(func(context.Context) ([]string, error) { return list.Load().([]string), nil }),
		consumer.WithFormerStreamsLeaseDeletion(300*time.Millisecond), consumer.WithHandler(ps.handler))...)
	streamLeases := func() map[string]int {
		out := map[string]int{}
		for _, l := range mustList(t, store) {
			id, _ := l.StreamIdentifier()
			out[id.StreamName]++
		}
		return out
	}
	waitFor(t, 20*time.Second, "both streams leased, the stranger's lease deleted", func() bool {
		n := streamLeases()
		return n["fs-a"] == 1 && n["fs-b"] == 1 && n["gone-long-ago"] == 0
	})
	list.Store([]string{"fs-b"})
	waitFor(t, 20*time.Second, "fs-a's lease deleted once dropped", func() bool {
		n := streamLeases()
		return n["fs-a"] == 0 && n["fs-b"] == 1
	})
}

// Multi-stream mode over enhanced fan-out: the stream consumer is
// registered on each stream, and every record of both streams arrives,
// naming its stream.
func TestMultiStreamFanOut(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	prods := streamsWith(t, kc, 3, "fo-a", "fo-b")
	ps := &perStream{}
	start(t, append(fast("", kc, memory.NewWithTable(), "w1"), consumer.WithStreams("fo-a", "fo-b"), consumer.WithFanOut("app"),
		consumer.WithHandler(ps.handler))...)
	waitFor(t, 20*time.Second, "every record of both streams", func() bool {
		return ps.count("fo-a") == prods["fo-a"].total() && ps.count("fo-b") == prods["fo-b"].total()
	})
	for _, name := range []string{"fo-a", "fo-b"} {
		sum, err := kc.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := kc.ListStreamConsumers(bg, &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamDescriptionSummary.StreamARN})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Consumers) != 1 || aws.ToString(out.Consumers[0].ConsumerName) != "app" {
			t.Fatalf("stream %s consumers = %+v, want app", name, out.Consumers)
		}
	}
}

// streamsWith creates 1-shard streams, each with rounds rounds of records
// put, and returns their producers.
func streamsWith(t *testing.T, kc *kinesis.Client, rounds int, names ...string) map[string]*producer {
	t.Helper()
	prods := map[string]*producer{}
	for _, name := range names {
		servertest.CreateStream(t, kc, name, 1)
		prods[name] = newProducer(kc, name, 4)
		for range rounds {
			prods[name].round(t)
		}
	}
	return prods
}

// endMark is the data of a stream's last record in a test (perStream.ended).
const endMark = "end-of-test"

// perStream counts the records processed of each stream, and notes which
// streams' endMark record was processed.
type perStream struct {
	mu   sync.Mutex // guards: seen, end
	seen map[string]int
	end  map[string]bool
}

func (p *perStream) handler(ctx context.Context, recs []consumer.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	if p.end == nil {
		p.end = map[string]bool{}
	}
	for _, r := range recs {
		p.seen[r.Stream]++
		if string(r.Data) == endMark {
			p.end[r.Stream] = true
		}
	}
	return nil
}

func (p *perStream) ended(stream string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end[stream]
}

func (p *perStream) count(stream string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[stream]
}

// WithStreamInitialPosition starts one stream elsewhere than the others:
// fs-b from a timestamp between two rounds of puts, fs-a from its start.
func TestStreamInitialPosition(t *testing.T) {
	t.Parallel()
	_, kc := startServer(t, server.Options{})
	prods := streamsWith(t, kc, 2, "ip-a", "ip-b")
	before := prods["ip-b"].total()
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	time.Sleep(50 * time.Millisecond)
	for _, p := range prods {
		p.round(t)
	}
	ps := &perStream{}
	start(t, append(fast("", kc, memory.NewWithTable(), "w1"), consumer.WithStreams("ip-a", "ip-b"),
		consumer.WithStreamInitialPosition("ip-b", consumer.AtTimestamp(t0)), consumer.WithHandler(ps.handler))...)
	// A last record in each stream's one shard: once it is processed,
	// everything from where the shard started has been (records come in
	// shard order), the records of ip-b before t0 too had it started there.
	for name := range prods {
		putData(t, kc, name, endMark)
	}
	waitFor(t, 20*time.Second, "the last record of ip-a and ip-b", func() bool { return ps.ended("ip-a") && ps.ended("ip-b") })
	if n := ps.count("ip-a"); n != prods["ip-a"].total()+1 {
		t.Errorf("ip-a: %d records processed, want all %d", n, prods["ip-a"].total()+1)
	}
	if n := ps.count("ip-b"); n != prods["ip-b"].total()-before+1 {
		t.Fatalf("ip-b: %d records processed, want the %d put after the timestamp", n, prods["ip-b"].total()-before+1)
	}
}

// pollOnly is a Kinesis client with only what polling needs.
type pollOnly struct{ consumer.KinesisAPI }

// describerOnly is a Kinesis client that can poll and describe streams.
type describerOnly struct {
	consumer.KinesisAPI
	consumer.StreamDescriber
}
