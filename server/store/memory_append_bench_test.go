package store

import (
	"bytes"
	"os"
	"testing"

	"github.com/ksp-project/ksp/internal/childproc"
)

// BenchmarkMemoryAppend appends batches of 500 records of 100 bytes (10-byte
// keys) to one memory log and commits each: the memory store's share of a
// PutRecords.
// "trimmed": past its retention, the log trims what it holds every 32 MiB
// appended (as the server's retention loop does), so appends can reuse the
// trimmed blocks.
func BenchmarkMemoryAppend(b *testing.B) {
	for _, trim := range []bool{false, true} {
		name := "growing"
		if trim {
			name = "trimmed"
		}
		b.Run(name, func(b *testing.B) {
			m := NewMemory()
			defer m.Close()
			l, _ := m.Log(LogID{Stream: "s", Created: 1})
			slab := bytes.Repeat([]byte{'x'}, 500*100)
			recs := make([]Record, 500)
			b.ReportAllocs()
			cpu0 := childproc.CPUTime(os.Getpid())
			for i := 0; b.Loop(); i++ {
				for j := range recs {
					recs[j] = Record{ArrivalMilli: int64(i), PartitionKey: "pk-0000000", Data: slab[j*100 : (j+1)*100]}
				}
				if _, err := l.Append(recs); err != nil {
					b.Fatal(err)
				}
				m.Commit()
				if trim && i%(32<<20/len(slab)) == 0 {
					l.TrimBefore(int64(i))
				}
			}
			n := float64(b.N * len(recs))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
			if cpu := childproc.CPUTime(os.Getpid()) - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
			}
		})
	}
}
