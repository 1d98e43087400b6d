package store_test

import (
	"fmt"
	"testing"

	"github.com/ksp-project/ksp/server/store"
)

// BenchmarkAppendCommit appends batches of 500 records of 100 bytes to one
// log and commits each batch: the server's PutRecords path.
func BenchmarkAppendCommit(b *testing.B) {
	for _, p := range []store.FsyncPolicy{store.FsyncAlways, store.FsyncInterval, store.FsyncNever} {
		b.Run(p.String(), func(b *testing.B) {
			d, err := store.OpenDisk(b.TempDir(), store.DiskOptions{Fsync: p})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			l, err := d.Log(lid)
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 100)
			recs := make([]store.Record, 500)
			b.SetBytes(int64(len(recs) * len(data)))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for j := range recs {
					recs[j] = store.Record{ArrivalMilli: int64(i), PartitionKey: "pk", Data: data}
				}
				if _, err := l.Append(recs); err != nil {
					b.Fatal(err)
				}
				if err := d.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendCommitParallel is the same with 8 logs committing at once,
// where group commit shares fsyncs.
func BenchmarkAppendCommitParallel(b *testing.B) {
	for _, p := range []store.FsyncPolicy{store.FsyncAlways, store.FsyncInterval, store.FsyncNever} {
		b.Run(p.String(), func(b *testing.B) {
			d, err := store.OpenDisk(b.TempDir(), store.DiskOptions{Fsync: p})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			data := make([]byte, 100)
			b.SetBytes(500 * 100)
			b.SetParallelism(4) // 4 x GOMAXPROCS goroutines
			var shard = make(chan int, 1024)
			for i := range 1024 {
				shard <- i
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				l, err := d.Log(store.LogID{Stream: "p", Created: 1, ShardIdx: <-shard})
				if err != nil {
					b.Error(err)
					return
				}
				recs := make([]store.Record, 500)
				for pb.Next() {
					for j := range recs {
						recs[j] = store.Record{ArrivalMilli: 1, PartitionKey: "pk", Data: data}
					}
					if _, err := l.Append(recs); err != nil {
						b.Error(err)
						return
					}
					if err := d.Commit(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkRead reads a committed log of 100-byte records from start to end,
// 10000 records per call (GetRecords' maximum).
func BenchmarkRead(b *testing.B) {
	d, err := store.OpenDisk(b.TempDir(), store.DiskOptions{Fsync: store.FsyncNever, SegmentBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	l, err := d.Log(lid)
	if err != nil {
		b.Fatal(err)
	}
	const total = 200_000
	data := make([]byte, 100)
	for i := 0; i < total; i += 1000 {
		recs := make([]store.Record, 1000)
		for j := range recs {
			recs[j] = store.Record{ArrivalMilli: int64(i + j), PartitionKey: fmt.Sprint(j), Data: data}
		}
		if _, err := l.Append(recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var n int
	var pos uint64
	for b.Loop() {
		recs, err := l.Read(pos, 10000, 10<<20)
		if err != nil {
			b.Fatal(err)
		}
		n += len(recs)
		pos = recs[len(recs)-1].Position + 1
		if pos >= total {
			pos = 0
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.SetBytes(int64(n/b.N) * 100)
}
