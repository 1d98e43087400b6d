package kds

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
)

// HashKey is a point in the Kinesis hash-key space, 0 … 2^128−1.
type HashKey struct{ Hi, Lo uint64 }

// MaxHashKey is 2^128−1, the end of the last shard's range.
var MaxHashKey = HashKey{Hi: ^uint64(0), Lo: ^uint64(0)}

// HashPartitionKey maps a partition key to its hash key: the MD5 of its
// UTF-8 bytes read as a big-endian unsigned 128-bit integer.
func HashPartitionKey(partitionKey string) HashKey {
	sum := md5.Sum([]byte(partitionKey))
	return HashKey{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// ParseHashKey parses a decimal hash key such as an ExplicitHashKey. It
// accepts exactly the AWS pattern 0|([1-9]\d{0,38}) with a value at most 2^128−1.
func ParseHashKey(s string) (HashKey, error) {
	if !validHashKeyText(s) {
		return HashKey{}, fmt.Errorf("hash key %q is not a decimal integer matching 0|([1-9]\\d{0,38})", s)
	}
	var h HashKey
	for i := 0; i < len(s); i++ {
		// h = h*10 + digit, detecting overflow past 2^128−1.
		hiHi, hiLo := bits.Mul64(h.Hi, 10)
		loHi, loLo := bits.Mul64(h.Lo, 10)
		hi, carry := bits.Add64(hiLo, loHi, 0)
		if hiHi != 0 || carry != 0 {
			return HashKey{}, fmt.Errorf("hash key %q is greater than 2^128-1", s)
		}
		lo, c := bits.Add64(loLo, uint64(s[i]-'0'), 0)
		hi, carry = bits.Add64(hi, 0, c)
		if carry != 0 {
			return HashKey{}, fmt.Errorf("hash key %q is greater than 2^128-1", s)
		}
		h = HashKey{Hi: hi, Lo: lo}
	}
	return h, nil
}

func validHashKeyText(s string) bool {
	if len(s) == 0 || len(s) > 39 {
		return false
	}
	if s[0] == '0' && len(s) > 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String renders the hash key in decimal, as the API does.
func (h HashKey) String() string {
	if h.Hi == 0 {
		return fmt.Sprint(h.Lo)
	}
	return h.Big().String()
}

// Big returns the hash key as a big.Int.
func (h HashKey) Big() *big.Int {
	b := new(big.Int).SetUint64(h.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(h.Lo))
}

// Cmp compares h and o: -1, 0 or +1.
func (h HashKey) Cmp(o HashKey) int {
	switch {
	case h.Hi < o.Hi:
		return -1
	case h.Hi > o.Hi:
		return 1
	case h.Lo < o.Lo:
		return -1
	case h.Lo > o.Lo:
		return 1
	}
	return 0
}

// Add returns h+d, wrapping at 2^128.
func (h HashKey) Add(d HashKey) HashKey {
	lo, c := bits.Add64(h.Lo, d.Lo, 0)
	hi, _ := bits.Add64(h.Hi, d.Hi, c)
	return HashKey{Hi: hi, Lo: lo}
}

// Sub returns h−d, wrapping at 0.
func (h HashKey) Sub(d HashKey) HashKey {
	lo, b := bits.Sub64(h.Lo, d.Lo, 0)
	hi, _ := bits.Sub64(h.Hi, d.Hi, b)
	return HashKey{Hi: hi, Lo: lo}
}

// HashKeyRange is an inclusive range of hash keys, as a shard owns.
type HashKeyRange struct{ Start, End HashKey }

// Contains reports whether h is inside the range.
func (r HashKeyRange) Contains(h HashKey) bool {
	return r.Start.Cmp(h) <= 0 && h.Cmp(r.End) <= 0
}

// SplitHashKeySpace divides 0 … 2^128−1 into n even ranges the way AWS lays
// out a new stream: range i starts at i·⌊2^128/n⌋ and the last range ends at
// 2^128−1. For n = 2 the first range ends at 2^127−1.
func SplitHashKeySpace(n int) []HashKeyRange {
	return SplitHashKeyRange(HashKeyRange{End: MaxHashKey}, n)
}

// SplitHashKeyRange divides r into n even ranges; the last takes the remainder.
func SplitHashKeyRange(r HashKeyRange, n int) []HashKeyRange {
	if n < 1 {
		return nil
	}
	if n == 1 {
		return []HashKeyRange{r}
	}
	// width = (End−Start+1)/n, computed without overflowing when the range is the whole space.
	span := r.End.Sub(r.Start).Big()
	span.Add(span, big.NewInt(1))
	step := fromBig(new(big.Int).Quo(span, big.NewInt(int64(n))))
	out := make([]HashKeyRange, n)
	start := r.Start
	for i := range n {
		out[i].Start = start
		if i == n-1 {
			out[i].End = r.End
			break
		}
		out[i].End = start.Add(step).Sub(HashKey{Lo: 1})
		start = start.Add(step)
	}
	return out
}

func fromBig(b *big.Int) HashKey {
	var buf [16]byte
	b.FillBytes(buf[:])
	return HashKey{Hi: binary.BigEndian.Uint64(buf[:8]), Lo: binary.BigEndian.Uint64(buf[8:])}
}
