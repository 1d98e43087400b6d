package store_test

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ksp-project/ksp/internal/childproc"
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

// BenchmarkAppendCommitParallel is the same with 8 committers at once,
// where group commit shares fsyncs. "logs=8": each committer has a log of
// its own; "logs=4": each commit is 500 records spread over 4 logs (125
// each), the shape of `ksp bench server`'s 8 clients on a 4-shard stream.
// It reports CPU per record (the process's, kernel time included: holds on a
// busy machine), records per commit round, fdatasyncs per round and how long
// a round's fdatasyncs took.
func BenchmarkAppendCommitParallel(b *testing.B) {
	for _, p := range []store.FsyncPolicy{store.FsyncAlways, store.FsyncInterval, store.FsyncNever} {
		for _, logs := range []int{8, 4} {
			b.Run(fmt.Sprintf("%s/logs=%d", p, logs), func(b *testing.B) {
				benchParallelCommits(b, p, logs)
			})
		}
	}
}

func benchParallelCommits(b *testing.B, p store.FsyncPolicy, logs int) {
	const committers, perCommit = 8, 500
	d, err := store.OpenDisk(b.TempDir(), store.DiskOptions{Fsync: p})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	data := make([]byte, 100)
	b.SetBytes(perCommit * 100)
	b.SetParallelism((committers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var next atomic.Int64
	rounds0, syncs0, wait0 := store.SyncRounds(d), store.FileSyncs(d), store.SyncTime(d)
	cpu0 := childproc.CPUTime(os.Getpid())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// A log of its own when there are as many as committers, else all.
		ids := []int{int(next.Add(1)-1) % logs}
		if logs < committers {
			ids = make([]int, logs)
			for k := range ids {
				ids[k] = k
			}
		}
		var mine []store.Log
		for _, k := range ids {
			l, err := d.Log(store.LogID{Stream: "p", Created: 1, ShardIdx: k})
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, l)
		}
		recs := make([]store.Record, perCommit/len(mine))
		for pb.Next() {
			for _, l := range mine {
				for j := range recs {
					recs[j] = store.Record{ArrivalMilli: 1, PartitionKey: "pk", Data: data}
				}
				if _, err := l.Append(recs); err != nil {
					b.Error(err)
					return
				}
			}
			if err := d.Commit(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	n := float64(b.N * perCommit)
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	if cpu := childproc.CPUTime(os.Getpid()) - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
	}
	if r := store.SyncRounds(d) - rounds0; r > 0 {
		b.ReportMetric(n/float64(r), "records/round")
		b.ReportMetric(float64(store.FileSyncs(d)-syncs0)/float64(r), "fsyncs/round")
		b.ReportMetric(float64((store.SyncTime(d)-wait0).Microseconds())/float64(r), "sync-µs/round")
	}
}

// BenchmarkRead reads a committed log of 100-byte records from start to end,
// 10000 records per call (GetRecords' maximum), with Read and with ReadInto
// into one reused buffer (what the server does).
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
	var buf store.ReadBuffer
	reads := map[string]func(from uint64) ([]store.Record, error){
		"Read": func(from uint64) ([]store.Record, error) { return l.Read(from, 10000, 10<<20) },
		"ReadInto": func(from uint64) ([]store.Record, error) {
			return l.(store.BufferedReader).ReadInto(&buf, from, 10000, 10<<20)
		},
	}
	for _, name := range []string{"Read", "ReadInto"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			var pos uint64
			for b.Loop() {
				recs, err := reads[name](pos)
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
		})
	}
}
