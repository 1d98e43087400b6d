package aggregation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ksp-project/ksp/kds"
)

// fuzzSeeds are valid containers and malformed variants of them.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{2, 3, 10} {
		var a Aggregator
		for _, u := range randomRecords(r, n) {
			if err := a.Add(u.pk, u.ehk, u.data[:min(len(u.data), 40)]); err != nil {
				t.Fatal(err)
			}
		}
		valid := a.AppendEncoded(nil)
		seeds = append(seeds, valid)
		bad := bytes.Clone(valid)
		bad[len(bad)-1] ^= 1
		seeds = append(seeds, bad, valid[:len(valid)-1], frame(valid[4:len(valid)-20]))
	}
	seeds = append(seeds,
		nil, []byte("plain record"), []byte(magic), frame(nil),
		frame([]byte{0x0a, 0x01, 'k', 0x1a, 0x04, 0x08, 0x00, 0x1a, 0x00}),      // one record
		frame([]byte{0x0a, 0x01, 'k', 0x1a, 0x04, 0x08, 0x01, 0x1a, 0x00}),      // index out of range
		frame([]byte{0x0a, 0x01, 'k', 0x12, 0x01, 'x', 0x1a, 0x02, 0x08, 0x00}), // bad hash key, no data
		frame([]byte{0x1a, 0x06, 0x08, 0x00, 0x1a, 0x00, 0x23, 0x24, 0x0a, 0x00}),
	)
	return seeds
}

// FuzzDeaggregate: any bytes deaggregate without panicking; a malformed
// aggregate passes through whole as one record; a valid one re-encodes to
// the same user records; the shard filter only drops, and counts what it
// drops.
func FuzzDeaggregate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false, uint64(0), uint64(1<<63))
		if bytes.HasPrefix(s, []byte(magic)) && len(s) >= overhead {
			f.Add(s[len(magic):len(s)-16], true, uint64(1<<62), ^uint64(0))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, framed bool, startHi, endHi uint64) {
		if framed {
			// Let the fuzzer reach the protobuf parser past the MD5.
			data = frame(data)
		}
		rec := outer(data)
		got := Deaggregate(nil, rec)
		if len(got) == 0 {
			t.Fatal("no records")
		}
		if n := Count(data); n < len(got) || (got[0].Aggregated && n != len(got)) {
			t.Fatalf("Count %d, Deaggregate took out %d records (aggregated: %v)", n, len(got), got[0].Aggregated)
		}
		if !got[0].Aggregated {
			hasMagic := bytes.HasPrefix(data, []byte(magic))
			if len(got) != 1 || !bytes.Equal(got[0].Data, data) || (got[0].Err != nil) != hasMagic {
				t.Fatalf("pass-through of %d bytes: %+v", len(data), got)
			}
			if hasMagic && !errors.Is(got[0].Err, ErrChecksum) && !errors.Is(got[0].Err, ErrProtobuf) &&
				!errors.Is(got[0].Err, ErrIndexRange) && !errors.Is(got[0].Err, ErrHashKey) {
				t.Fatalf("Err %v is none of the documented kinds", got[0].Err)
			}
			return
		}
		for i, u := range got {
			if !u.Aggregated || u.Err != nil || u.SubSequenceNumber != int64(i) {
				t.Fatalf("record %d: %+v", i, u)
			}
		}

		hashRange := kds.HashKeyRange{Start: kds.HashKey{Hi: startHi}, End: kds.HashKey{Hi: endHi, Lo: ^uint64(0)}}
		kept, dropped := DeaggregateShard(nil, rec, hashRange)
		if len(kept)+dropped != len(got) {
			t.Fatalf("kept %d + dropped %d != %d", len(kept), dropped, len(got))
		}
		for _, k := range kept {
			if g := got[k.SubSequenceNumber]; g.PartitionKey != k.PartitionKey || !bytes.Equal(g.Data, k.Data) {
				t.Fatalf("filter changed record %d", k.SubSequenceNumber)
			}
		}

		if len(got) < 2 {
			return // an Aggregator sends one record raw
		}
		a := newAggregator(t, MaxSize(10<<20), MaxRecordSize(10<<20))
		for _, u := range got {
			if err := a.Add(u.PartitionKey, u.ExplicitHashKey, u.Data); errors.Is(err, ErrInvalidRecord) {
				return // a key Kinesis would refuse, such as ""
			} else if err != nil {
				t.Fatal(err)
			}
		}
		again := Deaggregate(nil, outer(a.AppendEncoded(nil)))
		if len(again) != len(got) {
			t.Fatalf("re-encoded %d records, decoded %d", len(got), len(again))
		}
		for i := range got {
			if again[i].PartitionKey != got[i].PartitionKey || again[i].ExplicitHashKey != got[i].ExplicitHashKey || !bytes.Equal(again[i].Data, got[i].Data) {
				t.Fatalf("record %d changed in a round trip: %+v, want %+v", i, again[i], got[i])
			}
		}
	})
}

// FuzzAggregator: for any shape of records and limit, Size is exact, the
// limit holds and the containers decode to what was added.
func FuzzAggregator(f *testing.F) {
	f.Add(uint64(1), uint16(10), uint32(DefaultMaxSize))
	f.Add(uint64(2), uint16(300), uint32(2000))
	f.Add(uint64(3), uint16(1), uint32(100))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, maxSize uint32) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], seed)
		r := rand.New(rand.NewChaCha8([32]byte(bytes.Repeat(b[:], 4))))
		limit := int(maxSize%(1<<20)) + 1
		a := newAggregator(t, MaxSize(limit), MaxRecordSize(1<<20))
		recs := randomRecords(r, int(n%500))
		var pending []userRec
		flush := func() {
			size, putSize := a.Size(), a.PutSize()
			c := a.Build(nil)
			if len(c.Data) != size || len(c.Data)+len(c.PartitionKey) != putSize {
				t.Fatalf("Size %d PutSize %d, built %d bytes with key %q", size, putSize, len(c.Data), c.PartitionKey)
			}
			if len(pending) > 1 && putSize > limit {
				t.Fatalf("aggregate of PutSize %d over MaxSize %d", putSize, limit)
			}
			if len(pending) > 0 {
				checkDecodes(t, c, pending)
			}
			pending = pending[:0]
		}
		for _, u := range recs {
			err := a.Add(u.pk, u.ehk, u.data)
			if errors.Is(err, ErrFull) {
				flush()
				err = a.Add(u.pk, u.ehk, u.data)
			}
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, u)
			if got := len(a.AppendEncoded(nil)); got != a.Size() {
				t.Fatalf("Size %d, AppendEncoded %d bytes", a.Size(), got)
			}
		}
		flush()
	})
}
