package aggregation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ksp-project/ksp/kds"
)

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("partition-key-%08d", i)
	}
	return keys
}

// BenchmarkAggregate adds user records and builds containers of the default
// size into a reused buffer, as a producer's shard loop would. One op is one
// user record.
func BenchmarkAggregate(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			keys := benchKeys(10000)
			data := make([]byte, size)
			var a Aggregator
			var buf []byte
			containers := 0
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pk := keys[i%len(keys)]
				if err := a.Add(pk, "", data); errors.Is(err, ErrFull) {
					buf = a.Build(buf[:0]).Data
					containers++
					_ = a.Add(pk, "", data)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(max(containers, 1)), "records/container")
		})
	}
}

// BenchmarkDeaggregate takes the user records out of a full default-size
// container into a reused slice. One op is one container.
func BenchmarkDeaggregate(b *testing.B) {
	keys := benchKeys(10000)
	r := rand.New(rand.NewPCG(1, 1))
	for _, size := range []int{100, 1000} {
		var a Aggregator
		data := make([]byte, size)
		for i := 0; ; i++ {
			if err := a.Add(keys[r.IntN(len(keys))], "", data); err != nil {
				break
			}
		}
		n := a.Len()
		rec := KinesisRecord{Data: a.AppendEncoded(nil), PartitionKey: "a", SequenceNumber: "49590338271490256608559692538361571095921575989136588898"}
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			var dst []UserRecord
			b.SetBytes(int64(len(rec.Data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dst = Deaggregate(dst[:0], rec)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
		b.Run(fmt.Sprintf("%dB/shard-filter", size), func(b *testing.B) {
			var dst []UserRecord
			// All but the last hash key: every key is hashed and checked
			// (the whole key space needs no check).
			nearlyAll := kds.HashKeyRange{End: kds.HashKey{Hi: ^uint64(0), Lo: ^uint64(0) - 1}}
			b.SetBytes(int64(len(rec.Data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dst, _ = DeaggregateShard(dst[:0], rec, nearlyAll)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
