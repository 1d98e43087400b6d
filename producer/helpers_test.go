package producer_test

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// newStream starts a server with opts and creates a stream of n shards.
func newStream(t *testing.T, opts server.Options, name string, n int32) (*server.Server, *kinesis.Client) {
	t.Helper()
	srv := servertest.Start(t, opts)
	c := servertest.Client(t, srv)
	servertest.CreateStream(t, c, name, n)
	return srv, c
}

// readBack is what a stream holds, deaggregated per shard with hash-range
// filtering, as the KCL reads it.
type readBack struct {
	records []readRecord
	dropped int      // user records DeaggregateShard dropped
	badAgg  []string // "shard/seq" of aggregates that had records dropped
}

type readRecord struct {
	shardID string
	rng     kds.HashKeyRange
	aggregation.UserRecord
}

func readAll(t *testing.T, c *kinesis.Client, stream string) readBack {
	t.Helper()
	var rb readBack
	for _, sh := range servertest.Shards(t, c, stream) {
		start, _ := kds.ParseHashKey(*sh.HashKeyRange.StartingHashKey)
		end, _ := kds.ParseHashKey(*sh.HashKeyRange.EndingHashKey)
		rng := kds.HashKeyRange{Start: start, End: end}
		var urs []aggregation.UserRecord
		for _, r := range servertest.ReadShard(t, c, stream, *sh.ShardId) {
			var n int
			urs = urs[:0]
			urs, n = aggregation.DeaggregateShard(urs, aggregation.KinesisRecord{Data: r.Data, PartitionKey: *r.PartitionKey, SequenceNumber: *r.SequenceNumber}, rng)
			if n > 0 {
				rb.dropped += n
				rb.badAgg = append(rb.badAgg, *sh.ShardId+"/"+*r.SequenceNumber)
			}
			for _, u := range urs {
				if u.Err != nil {
					t.Fatalf("shard %s seq %s: malformed aggregate: %v", *sh.ShardId, *r.SequenceNumber, u.Err)
				}
				rb.records = append(rb.records, readRecord{shardID: *sh.ShardId, rng: rng, UserRecord: u})
			}
		}
	}
	return rb
}

// idData is 8 bytes of id followed by pad bytes.
func idData(id uint64, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(b, id)
	return b
}

func dataID(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// effectiveHash is where Kinesis routes a user record.
func effectiveHash(t *testing.T, u aggregation.UserRecord) kds.HashKey {
	if u.ExplicitHashKey != "" {
		h, err := kds.ParseHashKey(u.ExplicitHashKey)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	return kds.HashPartitionKey(u.PartitionKey)
}

// counter is a metrics hook that counts.
type counter struct {
	received, put, failed, retries, throttles, requests, kinesisPut, errors atomic.Int64
	maxFill                                                                 atomic.Int64
	buffered                                                                atomic.Int64 // total ns
}

func (c *counter) OnUserRecordReceived(string, int) { c.received.Add(1) }
func (c *counter) OnUserRecordDone(d producer.UserRecordDone) {
	if d.Result.Err == nil {
		c.put.Add(1)
	} else {
		c.failed.Add(1)
	}
	c.retries.Add(int64(max(0, d.Result.Attempts-1)))
	c.buffered.Add(int64(d.Buffered))
}
func (c *counter) OnPutRecords(d producer.PutRecordsDone) {
	c.requests.Add(1)
	c.kinesisPut.Add(int64(d.PutKinesisRecords))
}
func (c *counter) OnError(string, string, string) { c.errors.Add(1) }
func (c *counter) OnThrottle(string, string)      { c.throttles.Add(1) }
func (c *counter) OnBufferFill(_ string, _ int, b int64) {
	for {
		m := c.maxFill.Load()
		if b <= m || c.maxFill.CompareAndSwap(m, b) {
			return
		}
	}
}

var _ interface {
	producer.HookUserRecordReceived
	producer.HookUserRecordDone
	producer.HookPutRecords
	producer.HookError
	producer.HookThrottle
	producer.HookBufferFill
} = (*counter)(nil)

const testTimeout = 2 * time.Minute

// untilTestDeadline is a context for a test whose duration is the machine's
// business (a long run under -race on a loaded machine): it ends shortly
// before the test binary's -timeout, so a hang fails with the test's own
// message rather than a panic, and never earlier.
func untilTestDeadline(t *testing.T) (context.Context, context.CancelFunc) {
	dl, ok := t.Deadline()
	if !ok {
		return context.WithCancel(t.Context())
	}
	return context.WithDeadline(t.Context(), dl.Add(-30*time.Second))
}
