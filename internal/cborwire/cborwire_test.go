package cborwire

import (
	"math"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestItemsDecode: what the appenders write is what fxamacker/cbor reads,
// at every boundary of the head's forms.
func TestItemsDecode(t *testing.T) {
	for _, v := range []int64{0, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, -1, -24, -25, -256, -257, math.MinInt64} {
		var got int64
		b := AppendInt(nil, v)
		if err := cbor.Unmarshal(b, &got); err != nil || got != v {
			t.Errorf("AppendInt(%d) reads back as %d, %v", v, got, err)
		}
		if IntLen(v) != len(b) {
			t.Errorf("IntLen(%d) = %d, AppendInt wrote %d bytes", v, IntLen(v), len(b))
		}
	}
	for _, n := range []int{0, 23, 24, 300, 70000} {
		s := string(make([]byte, n))
		var got string
		b := AppendText(nil, s)
		if err := cbor.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("AppendText of %d bytes: %v", n, err)
		}
		if HeadLen(uint64(n))+n != len(b) {
			t.Errorf("HeadLen(%d) = %d, AppendText wrote a %d-byte head", n, HeadLen(uint64(n)), len(b)-n)
		}
	}
	b := AppendHead(nil, Map, 1)
	b = AppendText(b, "k")
	b = AppendHead(AppendHead(b, Tag, 1), Uint, 5)
	var m map[string]cbor.Tag
	if err := cbor.Unmarshal(b, &m); err != nil || m["k"].Number != 1 || m["k"].Content != uint64(5) {
		t.Errorf("map with a tag reads back as %v, %v", m, err)
	}
}
