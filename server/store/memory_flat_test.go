package store

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/ksp-project/ksp/internal/childproc"
)

// TestMemoryBlocks crosses block boundaries with records larger than a
// block, checks that trimming unmaps the blocks of trimmed records, and that
// records read before a trim stay intact after it (Read copies them out).
func TestMemoryBlocks(t *testing.T) {
	t.Parallel()
	m := NewMemory()
	defer m.Close()
	lg, _ := m.Log(LogID{Stream: "s", Created: 1})
	l := lg.(*memLog)
	sizes := []int{10, memBlockSize - 5, 3, memBlockSize + 7, 1, 0, memBlockSize / 2, memBlockSize / 2}
	var batch []Record
	for i, n := range sizes {
		batch = append(batch, Record{ArrivalMilli: int64(i), PartitionKey: "key", Data: bytes.Repeat([]byte{byte('a' + i)}, n)})
	}
	if _, err := l.Append(batch); err != nil {
		t.Fatal(err)
	}
	m.Commit()
	all, err := l.Read(0, len(sizes), 1<<30)
	if err != nil || len(all) != len(sizes) {
		t.Fatalf("Read: %d records, %v", len(all), err)
	}
	for i, r := range all {
		if r.PartitionKey != "key" || len(r.Data) != sizes[i] || (sizes[i] > 0 && (r.Data[0] != byte('a'+i) || r.Data[len(r.Data)-1] != byte('a'+i))) {
			t.Fatalf("record %d: key %q, %d bytes", i, r.PartitionKey, len(r.Data))
		}
		if cap(r.Data) != len(r.Data) {
			t.Fatalf("record %d: Data has room to grow into the next record (cap %d, len %d)", i, cap(r.Data), len(r.Data))
		}
	}
	blocks := len(l.blocks)
	if blocks < 3 {
		t.Fatalf("%d blocks for records larger than a block", blocks)
	}
	// Writing into what Read returned changes nothing stored.
	all[0].Data[0] = 'Z'
	if again, _ := l.Read(0, 1, 1<<30); again[0].Data[0] != 'a' {
		t.Fatal("a write into a read record reached the store")
	}
	if _, err := l.TrimBefore(6); err != nil {
		t.Fatal(err)
	}
	if len(l.blocks) >= blocks {
		t.Fatalf("trimming 6 of 8 records kept all %d blocks", blocks)
	}
	if all[3].Data[memBlockSize] != byte('a'+3) {
		t.Fatal("a record read before the trim changed")
	}
	rest, _ := l.Read(0, 10, 1<<30)
	if len(rest) != 2 || rest[0].Position != 6 || rest[1].Data[0] != byte('a'+7) {
		t.Fatalf("after trim: %+v", len(rest))
	}
	if _, err := l.TrimBefore(100); err != nil || len(l.blocks) != 1 {
		t.Fatalf("trimming everything kept %d blocks (%v)", len(l.blocks), err)
	}
}

// BenchmarkMemoryStoreRSS appends 10 million 100-byte records with 10-byte
// keys to four logs and reports the growth of the process's RSS per record
// and as a multiple of the raw bytes (data + key + 8 bytes of sequence
// number + 8 of timestamp). Goal: at most 2x.
func BenchmarkMemoryStoreRSS(b *testing.B) {
	const (
		records = 10_000_000
		logs    = 4
		batch   = 500
		size    = 100
	)
	for b.Loop() {
		runtime.GC()
		base := childproc.RSS(os.Getpid())
		m := NewMemory()
		var ls []Log
		for i := range logs {
			l, _ := m.Log(LogID{Stream: "s", Created: 1, ShardIdx: i})
			ls = append(ls, l)
		}
		recs := make([]Record, batch)
		key := []byte("pk-0000000")
		for n := 0; n < records; n += batch {
			// As the server hands them over: the data of a request in
			// one slab, each key its own string.
			slab := bytes.Repeat([]byte{'x'}, batch*size)
			for i := range recs {
				key[len(key)-1] = byte('0' + i%10)
				recs[i] = Record{ArrivalMilli: int64(n), PartitionKey: string(key), Data: slab[i*size : (i+1)*size]}
			}
			if _, err := ls[(n/batch)%logs].Append(recs); err != nil {
				b.Fatal(err)
			}
			if n%(100*batch) == 0 {
				m.Commit()
			}
		}
		m.Commit()
		runtime.GC()
		grown := childproc.RSS(os.Getpid()) - base
		raw := int64(records) * (size + 10 + 8 + 8)
		b.ReportMetric(float64(grown)/records, "rss-bytes/record")
		b.ReportMetric(float64(grown)/float64(raw), "x-raw")
		m.Close()
	}
}

// Trimmed blocks are reused by later appends (of any log of the store), and
// a reused block never shows its old bytes: every record read back is one
// appended after the reuse, and the trimmed records are never readable.
func TestMemoryReusesTrimmedBlocks(t *testing.T) {
	t.Parallel()
	m := NewMemory()
	defer m.Close()
	la, _ := m.Log(LogID{Stream: "a", Created: 1})
	lb, _ := m.Log(LogID{Stream: "b", Created: 1})
	// Old records of 'o' bytes filling several full-size blocks of log a.
	old := Record{ArrivalMilli: 1, PartitionKey: "old", Data: bytes.Repeat([]byte{'o'}, 64<<10)}
	for range 4 * memBlockSize / len(old.Data) {
		if _, err := la.Append([]Record{old}); err != nil {
			t.Fatal(err)
		}
	}
	m.Commit()
	first, _ := la.TrimBefore(2) // every record: all but the block being filled go back
	if m.blocks.reused != 0 || len(m.blocks.free) == 0 {
		t.Fatalf("trim kept %d blocks for reuse (%d reused), want some", len(m.blocks.free), m.blocks.reused)
	}
	if recs, err := la.Read(0, 10, 1<<30); err != nil || len(recs) != 0 {
		t.Fatalf("Read(0) after trimming everything = %d records, %v", len(recs), err)
	}
	// New, shorter records of 'n' bytes, in both logs; log b's first block
	// is small, its next ones full-size.
	var want [2][]Record
	for i := range 2 * memBlockSize / 1000 {
		for k, l := range []Log{la, lb} {
			r := Record{ArrivalMilli: 3, PartitionKey: fmt.Sprint("new-", i), Data: bytes.Repeat([]byte{'n'}, 1000+i%7)}
			if _, err := l.Append([]Record{r}); err != nil {
				t.Fatal(err)
			}
			want[k] = append(want[k], r)
		}
	}
	m.Commit()
	if m.blocks.reused == 0 {
		t.Fatal("no trimmed block was reused")
	}
	for k, l := range []Log{la, lb} {
		from := uint64(0)
		if k == 0 {
			from = first
		}
		got, err := l.Read(0, len(want[k])+1, 1<<30)
		if err != nil || len(got) != len(want[k]) {
			t.Fatalf("log %d: Read = %d records, %v; want %d", k, len(got), err, len(want[k]))
		}
		for i, r := range got {
			w := want[k][i]
			if r.Position != from+uint64(i) || r.PartitionKey != w.PartitionKey || !bytes.Equal(r.Data, w.Data) {
				t.Fatalf("log %d record %d: position %d key %q %d bytes (first %q), want position %d key %q %d bytes of 'n'",
					k, i, r.Position, r.PartitionKey, len(r.Data), r.Data[:1], from+uint64(i), w.PartitionKey, len(w.Data))
			}
		}
	}
}

// The blocks a Memory keeps for reuse are bounded.
func TestMemoryReuseIsBounded(t *testing.T) {
	t.Parallel()
	m := NewMemory()
	defer m.Close()
	l, _ := m.Log(LogID{Stream: "a", Created: 1})
	big := Record{ArrivalMilli: 1, Data: make([]byte, memBlockSize)}
	for range memFreeBlocks + 4 {
		if _, err := l.Append([]Record{big}); err != nil {
			t.Fatal(err)
		}
	}
	m.Commit()
	l.TrimBefore(2)
	if n := len(m.blocks.free); n != memFreeBlocks {
		t.Fatalf("%d blocks kept after trimming %d, want the bound %d", n, memFreeBlocks+4, memFreeBlocks)
	}
}
