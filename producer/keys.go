package producer

import (
	"crypto/md5"
	"encoding/hex"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"strconv"

	"github.com/ksp-project/ksp/kds"
)

// Partition-key strategies. A partition key decides the shard (through its
// MD5) and so the order: Kinesis keeps order per shard, consumers per key.

// RandomKey returns a random partition key: records spread evenly over the
// shards, with no order between them. Use it when records are independent.
func RandomKey() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// HashedKey returns the partition key for a field value, such as a user
// id: the hex MD5 of the value. Every record with the same value gets the
// same key, so a user's events stay together and in order, while different
// values spread evenly. Unlike the value itself, the key is always valid
// (32 characters, whatever the value's length, even empty).
func HashedKey(value string) string {
	sum := md5.Sum([]byte(value))
	return hex.EncodeToString(sum[:])
}

// ExplicitHashKey returns the explicit hash key that puts a record in slot
// i of n equal slices of the hash key space (the middle of the slice), to
// pin records to a slice whatever their partition keys: with n equal to
// the shard count of a stream created with even shards, slot i is shard i.
// It panics unless 0 ≤ i < n.
func ExplicitHashKey(i, n int) string {
	if n < 1 || i < 0 || i >= n {
		panic("producer: ExplicitHashKey: slot out of range")
	}
	r := kds.SplitHashKeySpace(n)[i]
	return Midpoint(r)
}

// Midpoint returns the explicit hash key in the middle of r, a key that
// lands in the shard owning r for as long as that shard is open.
func Midpoint(r kds.HashKeyRange) string {
	sum := new(big.Int).Add(r.Start.Big(), r.End.Big())
	return sum.Rsh(sum, 1).String()
}

// hashKeyDecimal formats a hash key in decimal, as ExplicitHashKey takes
// it, without the big.Int kds.HashKey.String goes through.
func hashKeyDecimal(h kds.HashKey) string {
	const base = 1e19 // the largest power of ten below 2^64
	var buf [40]byte
	if h.Hi == 0 {
		return string(strconv.AppendUint(buf[:0], h.Lo, 10))
	}
	// h = (hi·2^64 + lo) = q·10^19 + r, with q < 2^128/10^19 < 2·2^64.
	qHi := h.Hi / base
	qLo, r := bits.Div64(h.Hi%base, h.Lo, base)
	b := buf[:0]
	if qHi == 0 {
		b = strconv.AppendUint(b, qLo, 10)
	} else {
		top, mid := bits.Div64(qHi, qLo, base)
		b = strconv.AppendUint(b, top, 10)
		b = appendPadded(b, mid)
	}
	return string(appendPadded(b, r))
}

// appendPadded appends v < 10^19 in exactly 19 decimal digits.
func appendPadded(b []byte, v uint64) []byte {
	var d [19]byte
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:]...)
}
