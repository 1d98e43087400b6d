package server

import (
	"fmt"
	"strconv"
)

// A ksp sequence number is 56 decimal digits, like AWS's:
//
//	49 | stream creation ms (13) | shard index (11) | position (20) | check (10)
//
// Within one shard the prefix is constant, so numeric order is position
// order. The check digits (FNV-1a of the first 46 digits) let the server tell
// a sequence number it issued from a made-up or mistyped one.
const seqLen = 56

type seqNum struct {
	created  int64
	shardIdx int
	position uint64
}

func (s seqNum) String() string {
	var b [seqLen]byte
	return string(s.append(b[:0]))
}

func (s seqNum) append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, '4', '9')
	dst = appendPadded(dst, uint64(s.created), 13)
	dst = appendPadded(dst, uint64(s.shardIdx), 11)
	dst = appendPadded(dst, s.position, 20)
	return appendPadded(dst, uint64(fnv1a(dst[start:])), 10)
}

// seqPrefix is the constant head of one shard's sequence numbers and the
// FNV-1a state after it, so the hot paths format only the position.
type seqPrefix struct {
	head [26]byte
	hash uint32
}

func newSeqPrefix(created int64, shardIdx int) seqPrefix {
	var p seqPrefix
	b := append(p.head[:0], '4', '9')
	b = appendPadded(b, uint64(created), 13)
	appendPadded(b, uint64(shardIdx), 11)
	p.hash = fnv1aFrom(2166136261, p.head[:])
	return p
}

// append appends the sequence number of position pos; it equals
// seqNum{created, shardIdx, pos}.append.
func (p *seqPrefix) append(dst []byte, pos uint64) []byte {
	var b [seqLen]byte
	copy(b[:26], p.head[:])
	putDigits(b[26:46], pos)
	putDigits(b[46:], uint64(fnv1aFrom(p.hash, b[26:46])))
	return append(dst, b[:]...)
}

// seqCursor formats the sequence numbers of a run of one shard's positions
// (a GetRecords page): the head, the first 18 of the position's 20 digits
// and the FNV-1a state after them are kept while positions stay within one
// hundred, so each record hashes and formats only its last two digits and
// the check.
type seqCursor struct {
	p     *seqPrefix
	valid bool
	hi    uint64        // pos/100 of head
	head  [26 + 18]byte // prefix and the position's first 18 digits
	hash  uint32        // FNV-1a after head
}

func newSeqCursor(p *seqPrefix) seqCursor { return seqCursor{p: p} }

// append appends the sequence number of pos: p.append(dst, pos).
func (c *seqCursor) append(dst []byte, pos uint64) []byte {
	if hi := pos / 100; !c.valid || hi != c.hi {
		copy(c.head[:26], c.p.head[:])
		putDigits(c.head[26:], hi)
		c.hash = fnv1aFrom(c.p.hash, c.head[26:])
		c.hi, c.valid = hi, true
	}
	var b [seqLen]byte
	copy(b[:44], c.head[:])
	lo := pos % 100
	b[44], b[45] = digitPairs[2*lo], digitPairs[2*lo+1]
	putDigits(b[46:], uint64(fnv1aFrom(c.hash, b[44:46])))
	return append(dst, b[:]...)
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" + "30313233343536373839" + "40414243444546474849" +
	"50515253545556575859" + "60616263646566676869" + "70717273747576777879" + "80818283848586878889" + "90919293949596979899"

// putDigits writes v in decimal right-aligned in b, zero-padded; b must be
// wide enough.
func putDigits(b []byte, v uint64) {
	i := len(b)
	for v >= 100 && i >= 2 {
		q := v / 100
		r := v - 100*q
		b[i-1], b[i-2] = digitPairs[2*r+1], digitPairs[2*r]
		i -= 2
		v = q
	}
	for i > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// fnv1a is FNV-1a, 32 bits (hash/fnv's, without the interface and its allocation).
func fnv1a(b []byte) uint32 { return fnv1aFrom(2166136261, b) }

func fnv1aFrom(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func appendPadded(dst []byte, v uint64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendUint(buf[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func parseSeqNum(s string) (seqNum, error) {
	if len(s) != seqLen || s[0] != '4' || s[1] != '9' {
		return seqNum{}, fmt.Errorf("not a sequence number issued by this server")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return seqNum{}, fmt.Errorf("not a decimal number")
		}
	}
	created, _ := strconv.ParseInt(s[2:15], 10, 64)
	idx, _ := strconv.ParseInt(s[15:26], 10, 64)
	pos, err := strconv.ParseUint(s[26:46], 10, 64)
	if err != nil {
		return seqNum{}, err
	}
	sn := seqNum{created: created, shardIdx: int(idx), position: pos}
	if sn.String() != s {
		return seqNum{}, fmt.Errorf("check digits do not match")
	}
	return sn, nil
}
