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
