// Package cborwire writes the CBOR (RFC 8949) items of the Kinesis wire
// format by hand, for the hot paths that the reflection-based encoder
// (fxamacker/cbor) would make slow: GetRecords answers in the server and
// GetRecords requests in sdkhttp.
package cborwire

import "math"

// Major types, as the high three bits of an item's initial byte.
const (
	Uint   byte = 0 << 5
	Neg    byte = 1 << 5
	Bytes  byte = 2 << 5
	Text   byte = 3 << 5
	Array  byte = 4 << 5
	Map    byte = 5 << 5
	Tag    byte = 6 << 5
	Simple byte = 7 << 5
)

// AppendHead appends an item's initial byte of major type major with
// argument n (a length, a count, a value or a tag number), in the shortest
// form.
func AppendHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= math.MaxUint8:
		return append(b, major|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, major|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// HeadLen is the length of AppendHead's initial byte and argument for n.
func HeadLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= math.MaxUint8:
		return 2
	case n <= math.MaxUint16:
		return 3
	case n <= math.MaxUint32:
		return 5
	}
	return 9
}

// IntLen is the length of AppendInt's item for v.
func IntLen(v int64) int {
	if v < 0 {
		return HeadLen(uint64(-1 - v))
	}
	return HeadLen(uint64(v))
}

// AppendText appends s as a text string.
func AppendText(b []byte, s string) []byte {
	return append(AppendHead(b, Text, uint64(len(s))), s...)
}

// AppendInt appends v as an integer.
func AppendInt(b []byte, v int64) []byte {
	if v < 0 {
		return AppendHead(b, Neg, uint64(-1-v))
	}
	return AppendHead(b, Uint, uint64(v))
}

// TextLen is the length of AppendText's item for s.
func TextLen(s string) int { return HeadLen(uint64(len(s))) + len(s) }

// AppendBytes appends data as a byte string, empty when nil (a Blob member
// is never null).
func AppendBytes(b, data []byte) []byte {
	return append(AppendHead(b, Bytes, uint64(len(data))), data...)
}

// BytesLen is the length of AppendBytes's item for data.
func BytesLen(data []byte) int { return HeadLen(uint64(len(data))) + len(data) }
