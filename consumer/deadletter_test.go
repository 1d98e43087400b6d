package consumer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/memory"
	kspproducer "github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	kspsink "github.com/ksp-project/ksp/sink"
)

// bigBad is the size of one failing record: over SQS's 256 KiB once
// encoded, so SQS gets a pointer instead of its data.
const bigBad = 200 << 10

func pos(r consumer.Record) string {
	return fmt.Sprintf("%s/%d", r.SequenceNumber, r.SubSequenceNumber)
}

// putMixed puts n records through the ksp producer (aggregated, so user
// records have sub-sequence numbers), every 7th one failing: data
// "bad-N"; one of them is bigBad long.
func putMixed(t *testing.T, client *kinesis.Client, stream string, n int) (bad int) {
	t.Helper()
	p, err := kspproducer.New(client, stream, kspproducer.MaxBufferedTime(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var pending []*kspproducer.Pending
	for i := range n {
		data := fmt.Appendf(nil, "rec-%03d", i)
		if i%7 == 3 {
			data = fmt.Appendf(nil, "bad-%03d", i)
			if bad == 1 {
				data = append(data, bytes.Repeat([]byte("x"), bigBad)...)
			}
			bad++
		}
		pd, err := p.Put(bg, kspproducer.Record{PartitionKey: fmt.Sprintf("k%d", i%5), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, pd)
	}
	if err := p.Close(bg); err != nil {
		t.Fatal(err)
	}
	for _, pd := range pending {
		if res, err := pd.Wait(bg); err != nil {
			t.Fatalf("put: %v (%+v)", err, res)
		}
	}
	return bad
}

// failing is a record handler that refuses records whose data starts with
// "bad", remembering each, and processes the others.
type failing struct {
	mu     sync.Mutex // guards: good, failed, last
	good   map[string]int
	failed map[string]consumer.Record
	last   map[string]lease.Checkpoint // per shard, the last record seen
}

func newFailing() *failing {
	return &failing{good: map[string]int{}, failed: map[string]consumer.Record{}, last: map[string]lease.Checkpoint{}}
}

func (f *failing) see(r consumer.Record) {
	cp := lease.Checkpoint{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
	if last, ok := f.last[r.ShardID]; !ok || cp.Compare(last) > 0 {
		f.last[r.ShardID] = cp
	}
}

func (f *failing) handle(_ context.Context, r consumer.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.see(r)
	if bytes.HasPrefix(r.Data, []byte("bad")) {
		r.Data = bytes.Clone(r.Data)
		f.failed[pos(r)] = r
		return fmt.Errorf("refused %.7s", r.Data)
	}
	f.good[string(r.Data)]++
	return nil
}

func (f *failing) goodCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.good)
}

// checkpointedToEnd reports whether every shard's lease is checkpointed at
// the last record the handler saw on it.
func (f *failing) checkpointedToEnd(t *testing.T, store lease.Store) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ls, err := store.ListLeases(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if last, ok := f.last[l.LeaseKey]; !ok || l.Checkpoint.Compare(last) != 0 {
			return false
		}
	}
	return len(ls) > 0
}

// checkEntries checks the dead-letter entries against the records the
// handler failed on: exactly those, each once, every field right.
func (f *failing) checkEntries(t *testing.T, bodies [][]byte, stream string, attempts int, maxSize int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(bodies) != len(f.failed) {
		t.Fatalf("%d dead-letter entries for %d failing records", len(bodies), len(f.failed))
	}
	seen := map[string]bool{}
	pointers := 0
	for _, b := range bodies {
		var e consumer.DeadLetter
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%v: %.200s", err, b)
		}
		key := fmt.Sprintf("%s/%d", e.SequenceNumber, e.SubSequenceNumber)
		r, ok := f.failed[key]
		if !ok || seen[key] {
			t.Fatalf("entry for %s: not a failing record, or sent twice", key)
		}
		seen[key] = true
		if e.Stream != stream || e.ShardID != r.ShardID || e.PartitionKey != r.PartitionKey || e.ExplicitHashKey != r.ExplicitHashKey ||
			!e.ApproximateArrivalTimestamp.Equal(r.ApproximateArrivalTimestamp) || e.ApproximateArrivalTimestamp.IsZero() ||
			e.Attempts != attempts || e.LastError != fmt.Sprintf("refused %.7s", r.Data) || e.Unit != "record" || e.UnitSize != 1 ||
			e.DataSize != len(r.Data) || e.Worker != "w1" || e.DeadLetteredAt.IsZero() {
			t.Fatalf("entry %.300s does not match record %+v", b, r)
		}
		switch {
		case e.DataPointer == "" && bytes.Equal(e.Data, r.Data):
		case e.DataPointer == fmt.Sprintf("kinesis://%s/%s/%s", stream, r.ShardID, key) && e.Data == nil && maxSize > 0 && len(r.Data) > maxSize/2:
			pointers++
		default:
			t.Fatalf("entry for %s: data %d bytes, pointer %q; record data %d bytes", key, len(e.Data), e.DataPointer, len(r.Data))
		}
		if maxSize > 0 && len(b) > maxSize {
			t.Fatalf("entry of %d bytes over the sink's %d", len(b), maxSize)
		}
	}
	if wantPointers := map[bool]int{true: 1, false: 0}[maxSize > 0 && maxSize < 2*bigBad]; pointers != wantPointers {
		t.Fatalf("%d entries with a pointer, want %d", pointers, wantPointers)
	}
}

// A record handler failing on chosen records sends exactly those, with
// every field, to each kind of sink, and the shards move on to their end.
func TestDeadLetterSendsExactlyTheFailingRecords(t *testing.T) {
	_, client := startServer(t, server.Options{})
	run := func(t *testing.T, stream string, s kspsink.Sink, entries func() [][]byte) {
		servertest.CreateStream(t, client, stream, 2)
		bad := putMixed(t, client, stream, 60)
		f := newFailing()
		store := memory.New()
		r := start(t, append(fast(stream, client, store, "w1"),
			consumer.WithRecordHandler(f.handle), consumer.WithDeadLetter(s, 2))...)
		var got [][]byte
		waitFor(t, 30*time.Second, "every good record processed and every bad one dead-lettered", func() bool {
			got = entries()
			return f.goodCount() == 60-bad && len(got) >= bad
		})
		waitFor(t, 10*time.Second, "both shards checkpointed at their last record", func() bool { return f.checkpointedToEnd(t, store) })
		r.stop(t)
		f.checkEntries(t, got, stream, 2, s.MaxSize())
	}

	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dlq.jsonl")
		fs, err := kspsink.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		run(t, "dlq-file", fs, func() [][]byte { return readJSONLines(t, path) })
	})
	t.Run("stream", func(t *testing.T) {
		servertest.CreateStream(t, client, "dead", 1)
		p, err := kspproducer.New(client, "dead", kspproducer.MaxBufferedTime(5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(bg)
		run(t, "dlq-stream", kspsink.NewProducer(p), func() [][]byte {
			var got [][]byte
			for _, kr := range servertest.ReadShard(t, client, "dead", "shardId-000000000000") {
				for _, u := range aggregation.Deaggregate(nil, aggregation.KinesisRecord{Data: kr.Data, PartitionKey: aws.ToString(kr.PartitionKey)}) {
					got = append(got, u.Data)
				}
			}
			return got
		})
	})
	t.Run("SQS", func(t *testing.T) {
		moto := peers.StartMoto(t)
		sqsClient := sqs.NewFromConfig(servertest.Config("us-east-1"), func(o *sqs.Options) { o.BaseEndpoint = aws.String(moto) })
		q, err := sqsClient.CreateQueue(bg, &sqs.CreateQueueInput{QueueName: aws.String("dlq")})
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		run(t, "dlq-sqs", kspsink.NewSQS(sqsClient, aws.ToString(q.QueueUrl)), func() [][]byte {
			out, err := sqsClient.ReceiveMessage(bg, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				got = append(got, []byte(aws.ToString(m.Body)))
				if _, err := sqsClient.DeleteMessage(bg, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
			return got
		})
	})
}

func readJSONLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	return out
}

// putData puts records with the given data, keyed k0…k4, in one call.
func putData(t *testing.T, client *kinesis.Client, stream string, data ...string) {
	t.Helper()
	entries := make([]types.PutRecordsRequestEntry, len(data))
	for i, d := range data {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%d", i%5)), Data: []byte(d)}
	}
	out, err := client.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v", err)
	}
}

// dlHooks records dead-letter hook calls and refuses checkpoints past a
// position before the sink accepted it.
type dlHooks struct {
	t        *testing.T
	mu       sync.Mutex // guards: fails, accepted, guard, records
	fails    int
	accepted bool
	guard    lease.Checkpoint
	records  int
}

func (h *dlHooks) OnDeadLetter(_ string, records int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.fails++
		return
	}
	h.accepted = true
	h.records += records
}

func (h *dlHooks) OnCheckpoint(_ string, cp lease.Checkpoint, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil && !h.guard.IsZero() && !h.accepted && cp.Compare(h.guard) >= 0 {
		h.t.Errorf("checkpoint %s past %s before the dead-letter sink accepted it", cp, h.guard)
	}
}

// A Handler failing a whole batch gets that batch dead-lettered after the
// attempts; a sink that is down holds the shard (no checkpoint past the
// batch, hooks told) until it accepts, then the shard moves on. An entry
// the sink refuses as too large goes again with a pointer for its data.
func TestDeadLetterBatchWaitsForTheSink(t *testing.T) {
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "dlq-batch", 1)
	putData(t, client, "dlq-batch", "a0", "a1", "bad", "a3", "a4", "a5")

	hk := &dlHooks{t: t}
	var (
		mu     sync.Mutex // guards: last, good, sends, bodies
		last   []consumer.Record
		good   = map[string]bool{}
		sends  int
		bodies [][]byte
	)
	h := func(_ context.Context, recs []consumer.Record) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			if string(r.Data) == "bad" {
				last = append([]consumer.Record(nil), recs...)
				for i := range last {
					last[i].Data = bytes.Clone(last[i].Data) // valid only until the handler returns
				}
				hk.mu.Lock()
				hk.guard = lease.Checkpoint{SequenceNumber: recs[0].SequenceNumber}
				hk.mu.Unlock()
				return errors.New("batch refused")
			}
		}
		for _, r := range recs {
			good[string(r.Data)] = true
		}
		return nil
	}
	down := kspsink.Func(func(_ context.Context, m kspsink.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if sends++; sends <= 3 {
			return errors.New("sink down")
		}
		if bytes.Contains(m.Body, []byte(`"data":"YmFk"`)) { // "bad"
			return fmt.Errorf("queue limit: %w", kspsink.ErrTooLarge)
		}
		bodies = append(bodies, bytes.Clone(m.Body))
		return nil
	})
	store := memory.New()
	r := start(t, append(fast("dlq-batch", client, store, "w1"), consumer.WithHandler(h), consumer.WithDeadLetter(down, 3), consumer.WithHooks(hk))...)
	waitFor(t, 20*time.Second, "the failing batch dead-lettered", func() bool {
		hk.mu.Lock()
		defer hk.mu.Unlock()
		return hk.accepted
	})
	putData(t, client, "dlq-batch", "b0", "b1")
	waitFor(t, 20*time.Second, "the records after it processed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return good["b0"] && good["b1"]
	})
	r.stop(t)

	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != len(last) || hk.fails != 4 || hk.records != len(last) {
		t.Fatalf("%d entries for a batch of %d; hook told %d failed sends (want 3 down, 1 too large) and %d records accepted", len(bodies), len(last), hk.fails, hk.records)
	}
	for i, b := range bodies {
		var e consumer.DeadLetter
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		data := string(e.Data)
		if e.DataPointer != "" {
			data = "bad" // the sink refused it with its data as too large
			if e.Data != nil || e.DataPointer != "kinesis://dlq-batch/shardId-000000000000/"+e.SequenceNumber+"/0" {
				t.Fatalf("entry %d: %s", i, b)
			}
		}
		if e.SequenceNumber != last[i].SequenceNumber || data != string(last[i].Data) || e.DataSize != len(last[i].Data) || e.Unit != "batch" || e.UnitSize != len(last) ||
			e.Attempts != 3 || e.LastError != "batch refused" || e.Stream != "dlq-batch" {
			t.Fatalf("entry %d: %s; want record %s of the batch", i, b, last[i].Data)
		}
	}
	for _, d := range []string{"a0", "a1", "a3", "a4", "a5"} {
		if good[d] {
			t.Fatalf("record %s of the dead-lettered batch was processed too", d)
		}
	}
}

func TestDeadLetterOptionsRefused(t *testing.T) {
	t.Parallel()
	base := fast("s", servertest.NewClient("http://127.0.0.1:1", "us-east-1"), memory.New(), "w")
	s := kspsink.Func(func(context.Context, kspsink.Message) error { return nil })
	proc := consumer.WithProcessor(func(string) consumer.RecordProcessor { return nil })
	handler := consumer.WithHandler(func(context.Context, []consumer.Record) error { return nil })
	for _, tc := range []struct {
		opts []consumer.Option
		want string
	}{
		{[]consumer.Option{handler, consumer.WithDeadLetter(s, 0)}, "dead-letter attempts 0 is below 1"},
		{[]consumer.Option{handler, consumer.WithDeadLetter(nil, 3)}, "dead-letter attempts 3 without a sink"},
		{[]consumer.Option{proc, consumer.WithDeadLetter(s, 3)}, "WithDeadLetter and WithBreaker need WithHandler or WithRecordHandler"},
	} {
		_, err := consumer.New(append(base, tc.opts...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
