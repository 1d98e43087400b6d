package server

import "encoding/binary"

// Hand-written CBOR for the hot answers, item for item what fxamacker/cbor
// writes for the same Go values (definite lengths, shortest heads, struct
// fields in order), without reflection or an allocation per record.

// CBOR major types, shifted into the head byte.
const (
	cborUint  = 0 << 5
	cborNeg   = 1 << 5
	cborBytes = 2 << 5
	cborText  = 3 << 5
	cborArray = 4 << 5
	cborMap   = 5 << 5
	cborTag   = 6 << 5
)

// appendCBORHead appends the head of an item of major type major and
// argument n, in its shortest form.
func appendCBORHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= 0xff:
		return append(b, major|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, major|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, major|27), n)
}

// cborHeadLen is the length appendCBORHead appends for argument n.
func cborHeadLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

func appendCBORInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendCBORHead(b, cborNeg, uint64(-1-v))
	}
	return appendCBORHead(b, cborUint, uint64(v))
}

func cborIntLen(v int64) int {
	if v < 0 {
		return cborHeadLen(uint64(-1 - v))
	}
	return cborHeadLen(uint64(v))
}

func appendCBORText(b []byte, s string) []byte {
	return append(appendCBORHead(b, cborText, uint64(len(s))), s...)
}

func cborTextLen(s string) int { return cborHeadLen(uint64(len(s))) + len(s) }

// appendCBORBytes appends b as a byte string, empty when nil (a Blob
// member is never null).
func appendCBORBytes(b, data []byte) []byte {
	return append(appendCBORHead(b, cborBytes, uint64(len(data))), data...)
}

func cborBytesLen(data []byte) int { return cborHeadLen(uint64(len(data))) + len(data) }
