package kds

import (
	"math/big"
	"testing"
)

func TestSplitHashKeySpaceMatchesAWS(t *testing.T) {
	t.Parallel()
	two := SplitHashKeySpace(2)
	if got, want := two[0].End.String(), "170141183460469231731687303715884105727"; got != want {
		t.Fatalf("2 shards: shard 0 ends at %s, want %s", got, want)
	}
	if got, want := two[1].Start.String(), "170141183460469231731687303715884105728"; got != want {
		t.Fatalf("2 shards: shard 1 starts at %s, want %s", got, want)
	}
	three := SplitHashKeySpace(3)
	if got, want := three[0].End.String(), "113427455640312821154458202477256070484"; got != want {
		t.Fatalf("3 shards: shard 0 ends at %s, want %s", got, want)
	}
	if got, want := three[2].End.String(), "340282366920938463463374607431768211455"; got != want {
		t.Fatalf("3 shards: last shard ends at %s, want %s", got, want)
	}
	for n := 1; n <= 64; n++ {
		rs := SplitHashKeySpace(n)
		if rs[0].Start != (HashKey{}) || rs[n-1].End != MaxHashKey {
			t.Fatalf("%d shards do not cover the space", n)
		}
		for i := 1; i < n; i++ {
			if rs[i].Start != rs[i-1].End.Add(HashKey{Lo: 1}) {
				t.Fatalf("%d shards: gap or overlap between %d and %d", n, i-1, i)
			}
		}
	}
}

func TestParseHashKey(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0", "1", "170141183460469231731687303715884105727", "340282366920938463463374607431768211455"} {
		h, err := ParseHashKey(s)
		if err != nil {
			t.Fatalf("ParseHashKey(%q): %v", s, err)
		}
		if h.String() != s {
			t.Fatalf("round trip %q -> %q", s, h.String())
		}
		b, _ := new(big.Int).SetString(s, 10)
		if h.Big().Cmp(b) != 0 {
			t.Fatalf("Big(%q) = %s", s, h.Big())
		}
	}
	for _, s := range []string{"", "01", "-1", "1a", "340282366920938463463374607431768211456", "9999999999999999999999999999999999999999"} {
		if _, err := ParseHashKey(s); err == nil {
			t.Fatalf("ParseHashKey(%q) accepted", s)
		}
	}
}

func TestHashPartitionKey(t *testing.T) {
	t.Parallel()
	// md5("a") = 0cc175b9c0f1b6a831c399e269772661
	b, _ := new(big.Int).SetString("0cc175b9c0f1b6a831c399e269772661", 16)
	if got := HashPartitionKey("a").Big(); got.Cmp(b) != 0 {
		t.Fatalf("HashPartitionKey(a) = %s, want %s", got, b)
	}
}

func FuzzParseHashKey(f *testing.F) {
	f.Add("0")
	f.Add("340282366920938463463374607431768211455")
	f.Add("340282366920938463463374607431768211456")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHashKey(s)
		b, ok := new(big.Int).SetString(s, 10)
		valid := ok && validHashKeyText(s) && b.BitLen() <= 128
		if valid != (err == nil) {
			t.Fatalf("ParseHashKey(%q) err=%v, want valid=%v", s, err, valid)
		}
		if err == nil && h.Big().Cmp(b) != 0 {
			t.Fatalf("ParseHashKey(%q) = %s", s, h)
		}
	})
}
