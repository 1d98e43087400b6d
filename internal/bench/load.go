package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/internal/backoff"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server/servertest"
)

const (
	streamName = "ksp-bench"
	readLimit  = 10000 // GetRecords Limit: the API maximum
	// maxAttempts bounds the retries of one call that keeps failing as a whole.
	maxAttempts = 20
	// stallAfter fails a drain that reads nothing new for this long.
	stallAfter = 30 * time.Second
)

// load drives one target: its clients, the records put and what was read.
type load struct {
	cfg     ServerConfig
	clients []*kinesis.Client
	fill    []byte // the bytes after each record's id

	perShard map[string]int // records acknowledged per shard, after put
	total    int
	seen     []atomic.Uint64 // bit i: record i read back

	// countOnly: the target serves prepared records (the null target), so
	// the drain counts them and checks their size instead of telling each
	// record put from every other.
	countOnly bool
}

// newLoad makes the clients, each with its own connection(s): over
// HTTP/1.1 (a pool) or h2c (one connection).
func newLoad(cfg ServerConfig, url, transport string) *load {
	l := &load{cfg: cfg, fill: make([]byte, cfg.Size-8)}
	for i := range l.fill {
		l.fill[i] = byte('a' + i%26)
	}
	for range cfg.Clients {
		// Retries are ours, not the SDK's, so each failure is counted and shown.
		opts := []func(*kinesis.Options){servertest.NoRetries}
		if transport == TransportH2C {
			opts = append(opts, func(o *kinesis.Options) { o.HTTPClient = sdkhttp.NewH2C() })
		}
		l.clients = append(l.clients, servertest.NewClient(url, cfg.Region, opts...))
	}
	return l
}

// close drops the clients' idle connections.
func (l *load) close() {
	for _, c := range l.clients {
		if h, ok := c.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
			h.CloseIdleConnections()
		}
	}
}

func (l *load) createStream(ctx context.Context) error {
	c := l.clients[0]
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(streamName), ShardCount: aws.Int32(int32(l.cfg.Shards))})
	if err != nil {
		return fmt.Errorf("CreateStream: %w", err)
	}
	if err := servertest.WaitActive(ctx, c, streamName); err != nil {
		return fmt.Errorf("waiting for stream %s: %w", streamName, err)
	}
	return nil
}

// warmUp opens each client's connection and runs each call once on a
// separate stream, so the timed phases measure neither connection setup nor a
// peer's JIT compiling its first requests.
func (l *load) warmUp(ctx context.Context) error {
	const name = "ksp-bench-warmup"
	c := l.clients[0]
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		return fmt.Errorf("CreateStream %s: %w", name, err)
	}
	if err := servertest.WaitActive(ctx, c, name); err != nil {
		return fmt.Errorf("waiting for stream %s: %w", name, err)
	}
	return each(ctx, len(l.clients), func(ctx context.Context, ci int) error {
		c := l.clients[ci]
		entries := make([]types.PutRecordsRequestEntry, min(l.cfg.Batch, 50))
		for i := range entries {
			entries[i] = l.entry(i)
		}
		if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: entries}); err != nil {
			return fmt.Errorf("warm-up PutRecords: %w", err)
		}
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(name), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return fmt.Errorf("warm-up GetShardIterator: %w", err)
		}
		if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(readLimit)}); err != nil {
			return fmt.Errorf("warm-up GetRecords: %w", err)
		}
		return nil
	})
}

// put puts records 0..n-1 from every client at once, each client taking the
// next batch of ids until none are left or budget (when > 0) has passed. Every
// record taken is put until acknowledged: failed entries are re-put, failed
// calls retried.
func (l *load) put(ctx context.Context, n int, budget time.Duration) (Phase, error) {
	var (
		next     atomic.Int64
		landed   atomic.Int64
		calls    atomic.Int64
		failed   atomic.Int64
		retried  atomic.Int64
		mu       sync.Mutex // guards: perShard
		perShard = map[string]int{}
	)
	start := time.Now()
	var deadline time.Time
	if budget > 0 {
		deadline = start.Add(budget)
	}
	err := each(ctx, len(l.clients), func(ctx context.Context, ci int) error {
		c := l.clients[ci]
		counts := map[string]int{}
		defer func() {
			mu.Lock()
			for id, k := range counts {
				perShard[id] += k
			}
			mu.Unlock()
		}()
		entries := make([]types.PutRecordsRequestEntry, 0, l.cfg.Batch)
		for {
			if !deadline.IsZero() && time.Now().After(deadline) {
				return nil
			}
			first := int(next.Add(int64(l.cfg.Batch))) - l.cfg.Batch
			if first >= n {
				return nil
			}
			entries = entries[:0]
			for id := first; id < min(first+l.cfg.Batch, n); id++ {
				entries = append(entries, l.entry(id))
			}
			pending := entries
			for attempt := 0; len(pending) > 0; attempt++ {
				if attempt > 0 {
					if err := pause(ctx, attempt); err != nil {
						return err
					}
				}
				out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(streamName), Records: pending})
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					failed.Add(1)
					if attempt+1 >= maxAttempts {
						return fmt.Errorf("PutRecords failed %d times, last: %w", maxAttempts, err)
					}
					continue
				}
				calls.Add(1)
				if len(out.Records) != len(pending) {
					return fmt.Errorf("PutRecords answered %d results for %d records", len(out.Records), len(pending))
				}
				var again []types.PutRecordsRequestEntry
				for i, r := range out.Records {
					if r.ErrorCode != nil {
						again = append(again, pending[i])
						continue
					}
					counts[aws.ToString(r.ShardId)]++
				}
				retried.Add(int64(len(again)))
				landed.Add(int64(len(pending) - len(again)))
				pending = again
			}
		}
	})
	elapsed := time.Since(start)
	if err != nil {
		return Phase{}, err
	}
	l.total = int(landed.Load())
	l.perShard = perShard
	l.seen = make([]atomic.Uint64, (l.total+63)/64)
	return Phase{
		Records: l.total, Seconds: elapsed.Seconds(), PerSecond: float64(l.total) / elapsed.Seconds(),
		Calls: int(calls.Load()), FailedCall: int(failed.Load()), Retried: int(retried.Load()),
	}, nil
}

// entry builds record id: its data starts with the id, so the drain can tell
// each record from every other.
func (l *load) entry(id int) types.PutRecordsRequestEntry {
	data := make([]byte, 8, l.cfg.Size)
	binary.BigEndian.PutUint64(data, uint64(id))
	return types.PutRecordsRequestEntry{Data: append(data, l.fill...), PartitionKey: aws.String("pk-" + strconv.Itoa(id))}
}

// drain reads every shard from TRIM_HORIZON, one goroutine per shard, until
// it has read as many records as were acknowledged on that shard, and checks
// that every record put was read exactly once.
func (l *load) drain(ctx context.Context) (Phase, error) {
	shards, err := l.listShards(ctx)
	if err != nil {
		return Phase{}, err
	}
	for id := range l.perShard {
		if !slices.Contains(shards, id) {
			return Phase{}, fmt.Errorf("records were acknowledged on shard %s, which ListShards does not list (%v)", id, shards)
		}
	}
	var calls, failed, empty, read atomic.Int64
	start := time.Now()
	err = each(ctx, len(shards), func(ctx context.Context, i int) error {
		c := l.clients[i%len(l.clients)]
		shard, want := shards[i], l.perShard[shards[i]]
		if want == 0 {
			return nil
		}
		var iter *string
		for attempt := 0; ; attempt++ {
			out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
				StreamName: aws.String(streamName), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
			})
			if err == nil {
				if iter = out.ShardIterator; iter == nil {
					return fmt.Errorf("GetShardIterator %s: no iterator in the answer", shard)
				}
				break
			}
			failed.Add(1)
			if attempt+1 >= maxAttempts || ctx.Err() != nil {
				return fmt.Errorf("GetShardIterator %s: %w", shard, err)
			}
			if err := pause(ctx, attempt+1); err != nil {
				return err
			}
		}
		got, attempt, progress := 0, 0, time.Now()
		for got < want && iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(readLimit)})
			if err != nil {
				failed.Add(1)
				if attempt++; attempt >= maxAttempts || ctx.Err() != nil {
					return fmt.Errorf("GetRecords %s: %w", shard, err)
				}
				if err := pause(ctx, attempt); err != nil {
					return err
				}
				continue
			}
			attempt = 0
			calls.Add(1)
			for _, r := range out.Records {
				if err := l.mark(r.Data); err != nil {
					return fmt.Errorf("shard %s: %w", shard, err)
				}
			}
			got += len(out.Records)
			read.Add(int64(len(out.Records)))
			iter = out.NextShardIterator
			if len(out.Records) > 0 {
				progress = time.Now()
				continue
			}
			empty.Add(1)
			if time.Since(progress) > stallAfter {
				return fmt.Errorf("shard %s: read %d of %d records, then nothing for %s", shard, got, want, stallAfter)
			}
			if err := backoff.Sleep(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
		if got != want {
			return fmt.Errorf("shard %s: read %d records, but %d were acknowledged on it", shard, got, want)
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return Phase{}, err
	}
	n := int(read.Load())
	if n != l.total {
		return Phase{}, fmt.Errorf("read %d records, but %d were put", n, l.total)
	}
	for w := range l.seen {
		if l.countOnly {
			break
		}
		bits := l.seen[w].Load()
		want := ^uint64(0)
		if rest := l.total - w*64; rest < 64 {
			want = 1<<rest - 1
		}
		if bits != want {
			return Phase{}, fmt.Errorf("records missing from the drain (word %d is %#x)", w, bits)
		}
	}
	return Phase{
		Records: n, Seconds: elapsed.Seconds(), PerSecond: float64(n) / elapsed.Seconds(),
		Calls: int(calls.Load()), FailedCall: int(failed.Load()), EmptyReads: int(empty.Load()),
	}, nil
}

// mark records that the record with this data was read; it fails on a
// record that was never put or was read before.
func (l *load) mark(data []byte) error {
	if len(data) != l.cfg.Size {
		return fmt.Errorf("read a record of %d bytes, want %d", len(data), l.cfg.Size)
	}
	if l.countOnly {
		return nil
	}
	id := binary.BigEndian.Uint64(data)
	if id >= uint64(l.total) {
		return fmt.Errorf("read record %d, but only %d were put", id, l.total)
	}
	bit := uint64(1) << (id % 64)
	if old := l.seen[id/64].Or(bit); old&bit != 0 {
		return fmt.Errorf("read record %d twice", id)
	}
	return nil
}

func (l *load) listShards(ctx context.Context) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(streamName)}
	for {
		page, err := l.clients[0].ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ListShards: %w", err)
		}
		for _, s := range page.Shards {
			ids = append(ids, aws.ToString(s.ShardId))
		}
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("ListShards: stream %s has no shards (put on %v)", streamName, slices.Sorted(maps.Keys(l.perShard)))
	}
	return ids, nil
}

// each runs fn(ctx, 0..n-1) concurrently and returns the first error; the
// first failure cancels the others.
func each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// pause waits before retry attempt (1, 2, ...): from 10 ms doubling to 1 s.
func pause(ctx context.Context, attempt int) error {
	return backoff.Sleep(ctx, backoff.Delay(10*time.Millisecond, time.Second, attempt-1))
}
