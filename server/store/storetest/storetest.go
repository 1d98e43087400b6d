// Package storetest is the conformance suite every store.Store implementation
// must pass: call Run from the implementation's tests.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/server/store"
)

// Run runs the suite. open returns a new, empty store; Run closes it (the
// suite's Close test included), so open may register cleanup but need not.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"DensePositions", testDensePositions},
		{"VisibleAfterCommit", testVisibleAfterCommit},
		{"RoundTrip", testRoundTrip},
		{"ReadLimits", testReadLimits},
		{"ReadFrom", testReadFrom},
		{"ReadInto", testReadInto},
		{"Bounds", testBounds},
		{"SeekTime", testSeekTime},
		{"TrimBefore", testTrimBefore},
		{"MultipleLogs", testMultipleLogs},
		{"DropStream", testDropStream},
		{"Meta", testMeta},
		{"Concurrent", testConcurrent},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// Rec returns a test record whose content is derived from i.
func Rec(i int, arrival int64) store.Record {
	return store.Record{
		ArrivalMilli: arrival,
		PartitionKey: fmt.Sprintf("pk-%d", i),
		Data:         []byte(fmt.Sprintf("data-%d-%s", i, bytes.Repeat([]byte{byte(i)}, i%50))),
	}
}

func mustLog(t *testing.T, s store.Store, id store.LogID) store.Log {
	t.Helper()
	l, err := s.Log(id)
	if err != nil {
		t.Fatalf("Log(%+v): %v", id, err)
	}
	return l
}

func appendN(t *testing.T, l store.Log, start, n int, arrival func(i int) int64) uint64 {
	t.Helper()
	recs := make([]store.Record, n)
	for i := range recs {
		recs[i] = Rec(start+i, arrival(start+i))
	}
	first, err := l.Append(recs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	for i := range recs {
		if recs[i].Position != first+uint64(i) {
			t.Fatalf("Append set Position %d on record %d, want %d", recs[i].Position, i, first+uint64(i))
		}
	}
	return first
}

func commit(t *testing.T, s store.Store) {
	t.Helper()
	if err := s.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// readAll reads every visible record from from on, in calls of at most 7.
func readAll(t *testing.T, l store.Log, from uint64) []store.Record {
	t.Helper()
	var out []store.Record
	for {
		recs, err := l.Read(from, 7, 1<<30)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Position + 1
	}
}

// checkRecs checks that recs are records start.. of appendN, at positions pos0...
func checkRecs(t *testing.T, recs []store.Record, pos0 uint64, start int, arrival func(int) int64) {
	t.Helper()
	for j, r := range recs {
		i := start + j
		want := Rec(i, arrival(i))
		if r.Position != pos0+uint64(j) || r.ArrivalMilli != want.ArrivalMilli ||
			r.PartitionKey != want.PartitionKey || !bytes.Equal(r.Data, want.Data) {
			t.Fatalf("record %d: got {%d %d %q %q}, want {%d %d %q %q}", j,
				r.Position, r.ArrivalMilli, r.PartitionKey, r.Data,
				pos0+uint64(j), want.ArrivalMilli, want.PartitionKey, want.Data)
		}
	}
}

func flat(int) int64         { return 1000 }
func rising(i int) int64     { return 1000 + int64(i) }
func byTens(i int) int64     { return 1000 + int64(i/10)*10 }
func idOf(n int) store.LogID { return store.LogID{Stream: "s", Created: 1, ShardIdx: n} }

func testDensePositions(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	if first := appendN(t, l, 0, 3, flat); first != 0 {
		t.Fatalf("first Append at %d, want 0", first)
	}
	if first := appendN(t, l, 3, 5, flat); first != 3 {
		t.Fatalf("second Append at %d, want 3", first)
	}
	commit(t, s)
	if first, err := l.Append(nil); err != nil || first != 8 {
		t.Fatalf("empty Append = %d, %v; want 8, nil", first, err)
	}
	if first := appendN(t, l, 8, 1, flat); first != 8 {
		t.Fatalf("third Append at %d, want 8", first)
	}
	commit(t, s)
	checkRecs(t, readAll(t, l, 0), 0, 0, flat)
	if got := len(readAll(t, l, 0)); got != 9 {
		t.Fatalf("read %d records, want 9", got)
	}
}

func testVisibleAfterCommit(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	appendN(t, l, 0, 4, rising)
	if recs, err := l.Read(0, 100, 1<<20); err != nil || len(recs) != 0 {
		t.Fatalf("before Commit: Read = %d records, %v; want none", len(recs), err)
	}
	if first, next, last := l.Bounds(); first != 0 || next != 0 || last != 0 {
		t.Fatalf("before Commit: Bounds = %d %d %d, want 0 0 0", first, next, last)
	}
	commit(t, s)
	appendN(t, l, 4, 2, rising)
	recs := readAll(t, l, 0)
	if len(recs) != 4 {
		t.Fatalf("after Commit: read %d records, want 4 (the later two are not committed)", len(recs))
	}
	checkRecs(t, recs, 0, 0, rising)
	commit(t, s)
	checkRecs(t, readAll(t, l, 0), 0, 0, rising)
	if recs := readAll(t, l, 0); len(recs) != 6 {
		t.Fatalf("after second Commit: read %d records, want 6", len(recs))
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	big := make([]byte, 1<<20+3)
	for i := range big {
		big[i] = byte(i * 7)
	}
	in := []store.Record{
		{ArrivalMilli: 5, PartitionKey: "", Data: nil},
		{ArrivalMilli: 5, PartitionKey: "k", Data: []byte{0, 0, 0}},
		{ArrivalMilli: 6, PartitionKey: string(bytes.Repeat([]byte("p"), 256)), Data: big},
		{ArrivalMilli: 1 << 50, PartitionKey: "ü\x00\xff", Data: []byte("x")},
	}
	want := make([]store.Record, len(in))
	for i := range in {
		want[i] = store.Record{ArrivalMilli: in[i].ArrivalMilli, PartitionKey: in[i].PartitionKey,
			Data: append([]byte(nil), in[i].Data...), Position: uint64(i)}
	}
	if _, err := l.Append(in); err != nil {
		t.Fatal(err)
	}
	commit(t, s)
	got := readAll(t, l, 0)
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Position != w.Position || g.ArrivalMilli != w.ArrivalMilli || g.PartitionKey != w.PartitionKey ||
			!bytes.Equal(g.Data, w.Data) {
			t.Fatalf("record %d differs: got pos %d arr %d key %q len %d", i, g.Position, g.ArrivalMilli, g.PartitionKey, len(g.Data))
		}
	}
}

func testReadLimits(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	appendN(t, l, 0, 20, flat)
	commit(t, s)
	recs, err := l.Read(0, 5, 1<<20)
	if err != nil || len(recs) != 5 {
		t.Fatalf("Read(maxRecords=5) = %d, %v", len(recs), err)
	}
	checkRecs(t, recs, 0, 0, flat)
	// maxBytes below one record still returns one.
	recs, err = l.Read(3, 100, 1)
	if err != nil || len(recs) != 1 || recs[0].Position != 3 {
		t.Fatalf("Read(maxBytes=1) = %v, %v; want record 3", recs, err)
	}
	// maxBytes stops before exceeding.
	sz := 0
	for i := 0; i < 4; i++ {
		r := Rec(i, 0)
		sz += r.Size()
	}
	recs, err = l.Read(0, 100, sz)
	if err != nil || len(recs) != 4 {
		t.Fatalf("Read(maxBytes=size of 4) = %d records, %v; want 4", len(recs), err)
	}
	recs, err = l.Read(0, 100, sz-1)
	if err != nil || len(recs) != 3 {
		t.Fatalf("Read(maxBytes=size of 4 - 1) = %d records, %v; want 3", len(recs), err)
	}
	total := 0
	for _, r := range readAll(t, l, 0) {
		total += r.Size()
	}
	if recs, _ := l.Read(0, 1000, total); len(recs) != 20 {
		t.Fatalf("Read(maxBytes=all) = %d records, want 20", len(recs))
	}
}

// testReadInto: a log that offers ReadInto returns what Read returns, with
// the same limits, in the caller's buffer, which it reuses when large
// enough; records Read returned stay as they were.
func testReadInto(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	br, ok := l.(store.BufferedReader)
	if !ok {
		t.Skip("the log does not offer ReadInto")
	}
	const n = 300
	appendN(t, l, 0, n, rising)
	l.Append([]store.Record{{ArrivalMilli: rising(n), Data: []byte{}}}) // empty key and data
	commit(t, s)
	var buf store.ReadBuffer
	var first *store.Record
	kept, _ := l.Read(0, n+1, 1<<30)
	for _, c := range []struct{ from, n, bytes int }{{0, n + 1, 1 << 30}, {10, 50, 1 << 30}, {250, 100, 1 << 30}, {3, 100, 1}, {0, 100, 500}, {n + 1, 10, 1 << 30}} {
		want, err := l.Read(uint64(c.from), c.n, c.bytes)
		if err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadInto(&buf, uint64(c.from), c.n, c.bytes)
		if err != nil || len(got) != len(want) {
			t.Fatalf("ReadInto(%d, %d, %d) = %d records, %v; Read gave %d", c.from, c.n, c.bytes, len(got), err, len(want))
		}
		for i := range got {
			if got[i].Position != want[i].Position || got[i].ArrivalMilli != want[i].ArrivalMilli ||
				got[i].PartitionKey != want[i].PartitionKey || !bytes.Equal(got[i].Data, want[i].Data) ||
				got[i].Data == nil || cap(got[i].Data) != len(got[i].Data) {
				t.Fatalf("ReadInto(%d, %d, %d) record %d = %+v, Read gave %+v", c.from, c.n, c.bytes, i, got[i], want[i])
			}
		}
		// The first read sized the buffer for all; later reads fit in it.
		if len(got) == 0 {
			continue
		}
		if first == nil {
			first = &got[0]
		} else if &got[0] != first {
			t.Fatalf("ReadInto(%d, %d, %d) did not reuse the buffer", c.from, c.n, c.bytes)
		}
	}
	checkRecs(t, kept[:n], 0, 0, rising)
	if r := kept[n]; r.PartitionKey != "" || r.Data == nil || len(r.Data) != 0 {
		t.Fatalf("empty record read back as %+v", r)
	}
}

func testReadFrom(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	appendN(t, l, 0, 300, rising)
	commit(t, s)
	for _, from := range []uint64{0, 1, 99, 150, 299} {
		recs, err := l.Read(from, 1000, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != int(300-from) {
			t.Fatalf("Read(%d) = %d records, want %d", from, len(recs), 300-from)
		}
		checkRecs(t, recs, from, int(from), rising)
	}
	for _, from := range []uint64{300, 301, 1 << 40} {
		if recs, err := l.Read(from, 10, 1<<20); err != nil || len(recs) != 0 {
			t.Fatalf("Read(%d) past the end = %d records, %v", from, len(recs), err)
		}
	}
	if recs, err := l.Read(0, 0, 1<<20); err != nil || len(recs) != 0 {
		t.Fatalf("Read(maxRecords=0) = %d records, %v", len(recs), err)
	}
}

func testBounds(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	if first, next, last := l.Bounds(); first != 0 || next != 0 || last != 0 {
		t.Fatalf("empty Bounds = %d %d %d", first, next, last)
	}
	appendN(t, l, 0, 10, rising)
	commit(t, s)
	if first, next, last := l.Bounds(); first != 0 || next != 10 || last != rising(9) {
		t.Fatalf("Bounds = %d %d %d, want 0 10 %d", first, next, last, rising(9))
	}
}

func testSeekTime(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	if p, err := l.SeekTime(0); err != nil || p != 0 {
		t.Fatalf("SeekTime on empty log = %d, %v", p, err)
	}
	n := 500
	appendN(t, l, 0, n, byTens)
	commit(t, s)
	appendN(t, l, n, 10, func(int) int64 { return 1 << 40 }) // not committed
	cases := []struct {
		milli int64
		want  uint64
	}{
		{0, 0}, {1000, 0}, {1001, 10}, {1010, 10}, {1011, 20},
		{1000 + 490, 490}, {1000 + 491, 500}, {1 << 40, 500},
	}
	for _, c := range cases {
		if p, err := l.SeekTime(c.milli); err != nil || p != c.want {
			t.Fatalf("SeekTime(%d) = %d, %v; want %d", c.milli, p, err, c.want)
		}
	}
}

func testTrimBefore(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	if p, err := l.TrimBefore(1 << 40); err != nil || p != 0 {
		t.Fatalf("TrimBefore on empty log = %d, %v", p, err)
	}
	n := 2000
	for i := 0; i < n; i += 100 {
		appendN(t, l, i, 100, rising)
		commit(t, s)
	}
	check := func(milli int64) uint64 {
		t.Helper()
		oldFirst, _, _ := l.Bounds()
		first, err := l.TrimBefore(milli)
		if err != nil {
			t.Fatalf("TrimBefore(%d): %v", milli, err)
		}
		// Never past the first record to keep, never backwards, never renumbered.
		keep := uint64(max(0, min(int64(n), milli-1000)))
		if first > keep || first < oldFirst {
			t.Fatalf("TrimBefore(%d) = %d; want in [%d, %d]", milli, first, oldFirst, keep)
		}
		if f, next, last := l.Bounds(); f != first || next != uint64(n) || last != rising(n-1) {
			t.Fatalf("Bounds after TrimBefore(%d) = %d %d %d; want %d %d %d", milli, f, next, last, first, n, rising(n-1))
		}
		recs := readAll(t, l, 0)
		if len(recs) != n-int(first) {
			t.Fatalf("after TrimBefore(%d): read %d records from 0, want %d", milli, len(recs), n-int(first))
		}
		checkRecs(t, recs, first, int(first), rising)
		return first
	}
	check(0)
	check(1000 + 500)
	check(1000 + 1999)
	// Trimming is whole segments at a time; all retained records stay correct.
	appendN(t, l, n, 1, rising)
	commit(t, s)
	n++
	check(1000 + int64(n) - 1)
}

func testMultipleLogs(t *testing.T, s store.Store) {
	ids := []store.LogID{
		{Stream: "a", Created: 1, ShardIdx: 0},
		{Stream: "a", Created: 1, ShardIdx: 1},
		{Stream: "a", Created: 2, ShardIdx: 0},
		{Stream: "b", Created: 1, ShardIdx: 0},
		{Stream: ".", Created: 1, ShardIdx: 0},
		{Stream: "..", Created: 1, ShardIdx: 0},
		{Stream: "A", Created: 1, ShardIdx: 0},
	}
	for k, id := range ids {
		l := mustLog(t, s, id)
		if again := mustLog(t, s, id); again != l {
			t.Fatalf("Log(%+v) twice returned different logs", id)
		}
		appendN(t, l, 0, k+1, flat)
	}
	commit(t, s)
	for k, id := range ids {
		recs := readAll(t, mustLog(t, s, id), 0)
		if len(recs) != k+1 {
			t.Fatalf("log %+v: %d records, want %d", id, len(recs), k+1)
		}
		checkRecs(t, recs, 0, 0, flat)
	}
}

func testDropStream(t *testing.T, s store.Store) {
	a0 := store.LogID{Stream: "a", Created: 1, ShardIdx: 0}
	a1 := store.LogID{Stream: "a", Created: 1, ShardIdx: 1}
	a2 := store.LogID{Stream: "a", Created: 2, ShardIdx: 0}
	b0 := store.LogID{Stream: "b", Created: 1, ShardIdx: 0}
	for _, id := range []store.LogID{a0, a1, a2, b0} {
		appendN(t, mustLog(t, s, id), 0, 5, flat)
	}
	commit(t, s)
	if err := s.DropStream("a", 1); err != nil {
		t.Fatalf("DropStream: %v", err)
	}
	if err := s.DropStream("never-existed", 7); err != nil {
		t.Fatalf("DropStream of a missing stream: %v", err)
	}
	for _, id := range []store.LogID{a0, a1} {
		l := mustLog(t, s, id)
		if first, next, _ := l.Bounds(); first != 0 || next != 0 {
			t.Fatalf("%+v after drop: Bounds %d %d, want an empty log", id, first, next)
		}
		if first := appendN(t, l, 0, 1, flat); first != 0 {
			t.Fatalf("%+v after drop: Append at %d, want 0", id, first)
		}
	}
	commit(t, s)
	for _, id := range []store.LogID{a2, b0} {
		if recs := readAll(t, mustLog(t, s, id), 0); len(recs) != 5 {
			t.Fatalf("%+v: %d records after dropping another stream, want 5", id, len(recs))
		}
	}
}

func testMeta(t *testing.T, s store.Store) {
	if doc, err := s.LoadMeta(); err != nil || doc != nil {
		t.Fatalf("LoadMeta on a new store = %q, %v; want nil, nil", doc, err)
	}
	for _, doc := range [][]byte{[]byte(`{"v":1}`), []byte(`{"v":2,"streams":[]}`), []byte("x")} {
		if err := s.SaveMeta(doc); err != nil {
			t.Fatalf("SaveMeta: %v", err)
		}
		got, err := s.LoadMeta()
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("LoadMeta = %q, %v; want %q", got, err, doc)
		}
	}
	// The store must not keep the caller's slice.
	doc := []byte("abc")
	if err := s.SaveMeta(doc); err != nil {
		t.Fatal(err)
	}
	doc[0] = 'z'
	if got, _ := s.LoadMeta(); string(got) != "abc" {
		t.Fatalf("LoadMeta = %q after the caller changed its slice, want abc", got)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	const (
		logs    = 4
		batches = 30
		batch   = 20
	)
	var wg sync.WaitGroup
	errs := make(chan error, logs*2)
	// failed stops the readers when a writer fails: they wait for records
	// that will never come.
	failed := make(chan struct{})
	var failOnce sync.Once
	fail := func(err error) {
		errs <- err
		failOnce.Do(func() { close(failed) })
	}
	for k := range logs {
		l := mustLog(t, s, idOf(k))
		wg.Go(func() {
			for b := range batches {
				recs := make([]store.Record, batch)
				for i := range recs {
					recs[i] = Rec(b*batch+i, rising(b*batch+i))
				}
				first, err := l.Append(recs)
				if err == nil && first != uint64(b*batch) {
					err = fmt.Errorf("log %d: batch %d at %d, want %d", k, b, first, b*batch)
				}
				if err == nil {
					err = s.Commit()
				}
				if err == nil {
					// Commit returned: our batch must be visible.
					_, next, _ := l.Bounds()
					if next < uint64((b+1)*batch) {
						err = fmt.Errorf("log %d: after Commit next is %d, want >= %d", k, next, (b+1)*batch)
					}
				}
				if err != nil {
					fail(err)
					return
				}
			}
		})
		// A concurrent reader that only ever sees committed, correct records.
		wg.Go(func() {
			var from uint64
			for from < batches*batch {
				select {
				case <-failed:
					return
				default:
				}
				recs, err := l.Read(from, 50, 1<<20)
				if err != nil {
					fail(err)
					return
				}
				for j, r := range recs {
					want := Rec(int(from)+j, rising(int(from)+j))
					if r.Position != from+uint64(j) || !bytes.Equal(r.Data, want.Data) {
						fail(fmt.Errorf("log %d: reader got position %d data %q, want %d %q", k, r.Position, r.Data, from+uint64(j), want.Data))
						return
					}
				}
				from += uint64(len(recs))
				if len(recs) == 0 {
					time.Sleep(50 * time.Microsecond) // let the writer run
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k := range logs {
		recs := readAll(t, mustLog(t, s, idOf(k)), 0)
		if len(recs) != batches*batch {
			t.Fatalf("log %d: %d records, want %d", k, len(recs), batches*batch)
		}
		checkRecs(t, recs, 0, 0, rising)
	}
}

func testClose(t *testing.T, s store.Store) {
	l := mustLog(t, s, idOf(0))
	appendN(t, l, 0, 3, flat)
	commit(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	_, err := s.Log(idOf(1))
	check("Log", err)
	check("Commit", s.Commit())
	check("SaveMeta", s.SaveMeta([]byte("x")))
	_, err = s.LoadMeta()
	check("LoadMeta", err)
	check("DropStream", s.DropStream("s", 1))
	_, err = l.Append([]store.Record{Rec(0, 0)})
	check("Append", err)
	_, err = l.Read(0, 10, 1<<20)
	check("Read", err)
	_, err = l.SeekTime(0)
	check("SeekTime", err)
	_, err = l.TrimBefore(0)
	check("TrimBefore", err)
}
