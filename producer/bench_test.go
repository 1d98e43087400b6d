package producer_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/producer"
)

// nullClient is a Kinesis that does no work, for measuring the producer
// alone (the whole path, SDK and server included, is internal/bench's
// BenchmarkProduce): it lists evenly split shards and answers every
// PutRecords entry as put on the shard its hash key falls in, with one
// prepared sequence number.
type nullClient struct {
	shards []types.Shard
	ranges []kds.HashKeyRange
}

func newNullClient(n int) *nullClient {
	c := &nullClient{ranges: kds.SplitHashKeySpace(n)}
	for i, r := range c.ranges {
		c.shards = append(c.shards, types.Shard{
			ShardId:      aws.String(fmt.Sprintf("shardId-%012d", i)),
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(r.Start.String()), EndingHashKey: aws.String(r.End.String())},
		})
	}
	return c
}

func (c *nullClient) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: c.shards}, nil
}

const nullSeq = "49651234567890123456789012345678901234567890123456789012"

func (c *nullClient) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	for i, e := range in.Records {
		h := kds.HashPartitionKey(aws.ToString(e.PartitionKey))
		if e.ExplicitHashKey != nil {
			h, _ = kds.ParseHashKey(*e.ExplicitHashKey)
		}
		for j, r := range c.ranges {
			if r.Contains(h) {
				out.Records[i] = types.PutRecordsResultEntry{ShardId: c.shards[j].ShardId, SequenceNumber: aws.String(nullSeq)}
			}
		}
	}
	return out, nil
}

// BenchmarkPut measures the producer's own cost per user record (ns/op,
// allocs/op), aggregating 100-byte records from 4 goroutines into a Kinesis
// that does no work, with Put and with PutCallback.
func BenchmarkPut(b *testing.B) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	for _, api := range []string{"Put", "PutCallback"} {
		b.Run(api, func(b *testing.B) {
			ctx := context.Background()
			p, err := producer.New(newNullClient(4), "null", producer.RateLimit(0))
			if err != nil {
				b.Fatal(err)
			}
			done := func(r producer.Result) {
				if r.Err != nil {
					b.Error(r.Err)
				}
			}
			const writers = 4
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuSeconds()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					data := make([]byte, 100)
					for i := w; i < b.N; i += writers {
						rec := producer.Record{PartitionKey: keys[i%len(keys)], Data: data}
						var err error
						if api == "Put" {
							_, err = p.Put(ctx, rec)
						} else {
							err = p.PutCallback(ctx, rec, done)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if cpu0 >= 0 {
				b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N), "cpu-ns/op")
			}
			if st := p.Stats(); st.UserRecordsPut != int64(b.N) {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}
