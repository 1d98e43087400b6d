package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A segment file is a sequence of frames, one per record, with no file
// header. All integers are little-endian.
//
//	offset  size  field
//	0       4     frame length n, all bytes of the frame including this field and the CRC
//	4       8     position
//	12      8     arrival, epoch milliseconds (signed)
//	20      2     partition key length k
//	22      k     partition key
//	22+k    ...   data (n - 26 - k bytes)
//	n-4     4     CRC-32C (Castagnoli) of bytes [0, n-4)
//
// The CRC covers the length, so a torn or overwritten length is caught as
// soon as the frame it announces is read.
const (
	frameHeaderLen = 22
	frameOverhead  = frameHeaderLen + 4
	maxKeyLen      = 1<<16 - 1
	// MaxRecordData is the largest Record.Data the disk store accepts. It is
	// well above Kinesis' own limit and bounds what a corrupt length field can
	// make the decoder allocate.
	MaxRecordData = 32 << 20
	maxFrameLen   = frameOverhead + maxKeyLen + MaxRecordData
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShortFrame: the buffer ends before the frame does (a torn tail when
	// the buffer is the rest of the file).
	errShortFrame = errors.New("short frame")
	errBadLength  = errors.New("bad frame length")
	errBadCRC     = errors.New("bad frame checksum")
	// errBadPosition: a well-formed frame holds the wrong position.
	errBadPosition = errors.New("frame out of position")
)

// frameLen returns the encoded size of r.
func frameLen(r *Record) int { return frameOverhead + len(r.PartitionKey) + len(r.Data) }

// checkRecord reports why r cannot be stored, or nil.
func checkRecord(r *Record) error {
	if len(r.PartitionKey) > maxKeyLen {
		return fmt.Errorf("store: partition key of %d bytes exceeds %d", len(r.PartitionKey), maxKeyLen)
	}
	if len(r.Data) > MaxRecordData {
		return fmt.Errorf("store: record data of %d bytes exceeds %d", len(r.Data), MaxRecordData)
	}
	return nil
}

// appendFrame appends the frame of r (which must pass checkRecord) to dst.
func appendFrame(dst []byte, r *Record) []byte {
	n := frameLen(r)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint64(dst, r.Position)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.ArrivalMilli))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(r.PartitionKey)))
	dst = append(dst, r.PartitionKey...)
	dst = append(dst, r.Data...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// peekFrameLen returns the length announced by the frame at the start of b,
// validated against the format's bounds.
func peekFrameLen(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, errShortFrame
	}
	n := binary.LittleEndian.Uint32(b)
	if n < frameOverhead || n > maxFrameLen {
		return 0, errBadLength
	}
	return int(n), nil
}

// decodeFrame decodes the frame at the start of b and returns the record and
// the frame's length. Data aliases b; the key is copied. Errors are
// errShortFrame, errBadLength and errBadCRC.
func decodeFrame(b []byte) (Record, int, error) {
	v, n, err := viewFrame(b)
	if err != nil {
		return Record{}, 0, err
	}
	return Record{Position: v.position, ArrivalMilli: v.arrival, PartitionKey: string(v.key), Data: v.data}, n, nil
}

// frameView is a checked frame's fields, its key and data aliasing the frame.
type frameView struct {
	position uint64
	arrival  int64
	key      []byte
	data     []byte
}

// viewFrame is decodeFrame without copying the key.
func viewFrame(b []byte) (frameView, int, error) {
	n, err := peekFrameLen(b)
	if err != nil {
		return frameView{}, 0, err
	}
	if len(b) < n {
		return frameView{}, 0, errShortFrame
	}
	if crc32.Checksum(b[:n-4], castagnoli) != binary.LittleEndian.Uint32(b[n-4:]) {
		return frameView{}, 0, errBadCRC
	}
	k := int(binary.LittleEndian.Uint16(b[20:]))
	if frameHeaderLen+k > n-4 {
		// Only a crafted frame gets here: the CRC matched a bad layout.
		return frameView{}, 0, errBadLength
	}
	return frameView{
		position: binary.LittleEndian.Uint64(b[4:]),
		arrival:  int64(binary.LittleEndian.Uint64(b[12:])),
		key:      b[frameHeaderLen : frameHeaderLen+k],
		data:     b[frameHeaderLen+k : n-4 : n-4],
	}, n, nil
}

// frameHeader is the part of a frame that positions and time lookups need.
type frameHeader struct {
	length   int
	position uint64
	arrival  int64
}

// decodeHeader reads the header of the frame at the start of b without
// checking the CRC (used only on frames already verified at recovery or
// written by this process).
func decodeHeader(b []byte) (frameHeader, error) {
	n, err := peekFrameLen(b)
	if err != nil {
		return frameHeader{}, err
	}
	if len(b) < frameHeaderLen {
		return frameHeader{}, errShortFrame
	}
	return frameHeader{
		length:   n,
		position: binary.LittleEndian.Uint64(b[4:]),
		arrival:  int64(binary.LittleEndian.Uint64(b[12:])),
	}, nil
}
