package store

import (
	"bytes"
	"testing"
)

// BenchmarkMemoryAppend appends batches of 500 records of 100 bytes (10-byte
// keys) to one memory log and commits each: the memory store's share of a
// PutRecords.
func BenchmarkMemoryAppend(b *testing.B) {
	m := NewMemory()
	defer m.Close()
	l, _ := m.Log(LogID{Stream: "s", Created: 1})
	slab := bytes.Repeat([]byte{'x'}, 500*100)
	recs := make([]Record, 500)
	b.ReportAllocs()
	for b.Loop() {
		for i := range recs {
			recs[i] = Record{ArrivalMilli: 1, PartitionKey: "pk-0000000", Data: slab[i*100 : (i+1)*100]}
		}
		if _, err := l.Append(recs); err != nil {
			b.Fatal(err)
		}
		m.Commit()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
