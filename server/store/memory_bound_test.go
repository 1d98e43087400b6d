package store_test

import (
	"runtime"
	"testing"

	"github.com/ksp-project/ksp/server/store"
)

// heapLive returns the bytes of live heap objects after a full GC.
func heapLive() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The store's memory does not grow with the data: write, recover and read
// 256 MiB of 100 KiB records and check what stays live on the heap.
func TestDiskMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	const (
		recSize = 100 << 10
		total   = 256 << 20
		batch   = 50
		limit   = 48 << 20
	)
	dir := t.TempDir()
	opts := store.DiskOptions{Fsync: store.FsyncNever, SegmentBytes: 16 << 20}
	base := heapLive()
	check := func(when string) {
		t.Helper()
		live := heapLive()
		if live > base+limit {
			t.Fatalf("%s: %d MiB live on the heap (started at %d MiB)", when, live>>20, base>>20)
		}
		t.Logf("%s: %d MiB live on the heap", when, live>>20)
	}
	d, err := store.OpenDisk(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, d, lid)
	data := make([]byte, recSize)
	recs := make([]store.Record, batch)
	n := 0
	for n*recSize < total {
		data[0] = byte(n / batch) // shared by the batch: Append encodes it at once
		for i := range recs {
			recs[i] = store.Record{ArrivalMilli: int64(n + i), PartitionKey: "k", Data: data}
		}
		if _, err := l.Append(recs); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		n += batch
	}
	check("after writing")
	d.Close()

	d, err = store.OpenDisk(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l = mustLog(t, d, lid)
	check("after recovery")
	var pos uint64
	for {
		got, err := l.Read(pos, 10000, 10<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		for _, r := range got {
			if r.Position != pos || len(r.Data) != recSize || r.Data[0] != byte(pos/batch) {
				t.Fatalf("record %d wrong", pos)
			}
			pos++
		}
	}
	if pos != uint64(n) {
		t.Fatalf("read %d records, want %d", pos, n)
	}
	check("after reading")
}
