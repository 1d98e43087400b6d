package server

import (
	"math"
	"testing"
)

func TestSeqPrefixMatchesSeqNum(t *testing.T) {
	for _, c := range []struct {
		created int64
		idx     int
		pos     uint64
	}{{0, 0, 0}, {1795816156147, 3, 42}, {1795816156147, 99999999999, math.MaxUint64}} {
		p := newSeqPrefix(c.created, c.idx)
		want := seqNum{created: c.created, shardIdx: c.idx, position: c.pos}.String()
		if got := string(p.append(nil, c.pos)); got != want || len(got) != seqLen {
			t.Fatalf("prefix %s != %s", got, want)
		}
		back, err := parseSeqNum(want)
		if err != nil || back != (seqNum{c.created, c.idx, c.pos}) {
			t.Fatalf("parse %s = %+v %v", want, back, err)
		}
	}
	if _, err := parseSeqNum("49" + "1795816156147" + "00000000003" + "00000000000000000042" + "0000000000"); err == nil {
		t.Fatal("wrong check digits accepted")
	}
}

// The cursor a GetRecords page formats with equals seqPrefix.append for
// runs that cross hundreds and for jumps in either direction.
func TestSeqCursorMatchesSeqPrefix(t *testing.T) {
	p := newSeqPrefix(1795816156147, 7)
	c := newSeqCursor(&p)
	for _, pos := range []uint64{0, 1, 98, 99, 100, 101, 199, 200, 12345678901234567, 5, math.MaxUint64 - 1, math.MaxUint64, 1e19, 42} {
		want := seqNum{created: 1795816156147, shardIdx: 7, position: pos}.String()
		if got := string(c.append([]byte("x"), pos)); got != "x"+want {
			t.Fatalf("cursor at %d: %s, want %s", pos, got, want)
		}
		if got := string(p.append(nil, pos)); got != want {
			t.Fatalf("prefix at %d: %s, want %s", pos, got, want)
		}
	}
	for pos := uint64(990); pos < 1210; pos++ {
		if got, want := string(c.append(nil, pos)), (seqNum{created: 1795816156147, shardIdx: 7, position: pos}).String(); got != want {
			t.Fatalf("cursor at %d: %s, want %s", pos, got, want)
		}
	}
}
