package store

import "testing"

// TestMemoryChunks crosses chunk boundaries on append, read and trim.
func TestMemoryChunks(t *testing.T) {
	t.Parallel()
	m := NewMemory()
	defer m.Close()
	l, _ := m.Log(LogID{Stream: "s", Created: 1})
	const n = 3*memChunk + 123
	for i := 0; i < n; i += 1000 {
		var batch []Record
		for j := i; j < min(i+1000, n); j++ {
			batch = append(batch, Record{ArrivalMilli: int64(j), PartitionKey: "k", Data: []byte{byte(j)}})
		}
		if _, err := l.Append(batch); err != nil {
			t.Fatal(err)
		}
	}
	if recs, _ := l.Read(0, 10, 1<<20); len(recs) != 0 {
		t.Fatal("records visible before Commit")
	}
	m.Commit()
	check := func(from uint64, want int) {
		t.Helper()
		recs, err := l.Read(from, n, 1<<30)
		if err != nil || len(recs) != want {
			t.Fatalf("Read(%d) = %d records, %v; want %d", from, len(recs), err, want)
		}
		for i, r := range recs {
			if r.Position != from+uint64(i) || r.ArrivalMilli != int64(from)+int64(i) || r.Data[0] != byte(from+uint64(i)) {
				t.Fatalf("Read(%d)[%d] = %+v", from, i, r)
			}
		}
	}
	check(0, n)
	check(memChunk-1, n-memChunk+1)
	check(2*memChunk+5, n-2*memChunk-5)
	trim := int64(memChunk + 77)
	first, _ := l.TrimBefore(trim)
	if first != uint64(trim) {
		t.Fatalf("TrimBefore(%d) = %d", trim, first)
	}
	check(uint64(trim), n-int(trim))
	if recs, _ := l.Read(0, 1, 1<<20); recs[0].Position != uint64(trim) {
		t.Fatalf("first record after trim at %d", recs[0].Position)
	}
	if pos, _ := l.SeekTime(3 * memChunk); pos != 3*memChunk {
		t.Fatalf("SeekTime = %d", pos)
	}
	if f, next, last := l.Bounds(); f != uint64(trim) || next != n || last != n-1 {
		t.Fatalf("Bounds = %d %d %d", f, next, last)
	}
	first, _ = l.TrimBefore(n + 10)
	if first != n {
		t.Fatalf("trim all: first %d", first)
	}
	if _, err := l.Append([]Record{{ArrivalMilli: n + 10}}); err != nil {
		t.Fatal(err)
	}
	m.Commit()
	if recs, _ := l.Read(0, 10, 1<<20); len(recs) != 1 || recs[0].Position != n {
		t.Fatalf("after trimming everything and appending one: %+v", recs)
	}
}
