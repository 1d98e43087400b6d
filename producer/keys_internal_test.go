package producer

import (
	"math/rand/v2"
	"testing"

	"github.com/ksp-project/ksp/kds"
)

// TestHashKeyDecimal checks the allocation-light formatter against
// kds.HashKey.String (big.Int) at the edges of each 10^19 step and at
// random keys.
func TestHashKeyDecimal(t *testing.T) {
	keys := []kds.HashKey{
		{}, {Lo: 1}, {Lo: ^uint64(0)}, {Hi: 1}, {Hi: 1, Lo: 1}, kds.MaxHashKey,
		{Lo: 9999999999999999999}, {Lo: 10000000000000000000},
		{Hi: 0x8ac7230489e80000}, {Hi: 0x8ac7230489e7ffff, Lo: ^uint64(0)}, // 10^19·2^64 and just below
		{Hi: 0x4b3b4ca85a86c47a, Lo: 0x098a224000000000}, // 10^38
		{Hi: 0x4b3b4ca85a86c47a, Lo: 0x098a223fffffffff}, // 10^38−1
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		keys = append(keys, kds.HashKey{Hi: r.Uint64() >> r.IntN(64), Lo: r.Uint64()})
	}
	for _, h := range keys {
		if got, want := hashKeyDecimal(h), h.String(); got != want {
			t.Fatalf("hashKeyDecimal(%#x:%#x) = %s, want %s", h.Hi, h.Lo, got, want)
		}
		if back, err := kds.ParseHashKey(hashKeyDecimal(h)); err != nil || back != h {
			t.Fatalf("%s parses back as %v, %v", hashKeyDecimal(h), back, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { hashKeyDecimal(kds.MaxHashKey) }); n > 1 {
		t.Errorf("hashKeyDecimal allocates %.0f times, want at most 1 (the string)", n)
	}
}
