package store

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzSegmentDecode(f *testing.F) {
	var seed []byte
	for i, r := range []Record{
		{Position: 0, ArrivalMilli: 1, PartitionKey: "k", Data: []byte("hello")},
		{Position: 1, ArrivalMilli: -5, PartitionKey: "", Data: nil},
		{Position: 1 << 60, ArrivalMilli: 1 << 62, PartitionKey: "\x00\xff", Data: bytes.Repeat([]byte{7}, 300)},
	} {
		seed = appendFrame(seed, &r)
		f.Add(seed[:len(seed)-i])
	}
	f.Add([]byte{26, 0, 0, 0})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			if h, err := decodeHeader(b); err == nil && (h.length < frameOverhead || h.length > maxFrameLen) {
				t.Fatalf("decodeHeader accepted length %d", h.length)
			}
			rec, n, err := decodeFrame(b)
			if err != nil {
				if !errors.Is(err, errShortFrame) && !errors.Is(err, errBadLength) && !errors.Is(err, errBadCRC) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if n < frameOverhead || n > len(b) {
				t.Fatalf("frame length %d of %d bytes", n, len(b))
			}
			// A frame that decodes re-encodes to the same bytes.
			if got := appendFrame(nil, &rec); !bytes.Equal(got, b[:n]) {
				t.Fatalf("round trip differs:\n in %x\nout %x", b[:n], got)
			}
			if frameLen(&rec) != n {
				t.Fatalf("frameLen %d, decoded length %d", frameLen(&rec), n)
			}
			b = b[n:]
		}
	})
}

// Encoding then decoding any record gives it back.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(uint64(0), int64(0), "", []byte(nil))
	f.Add(uint64(42), int64(1700000000000), "pk", []byte("data"))
	f.Fuzz(func(t *testing.T, pos uint64, arrival int64, key string, data []byte) {
		r := Record{Position: pos, ArrivalMilli: arrival, PartitionKey: key, Data: data}
		if checkRecord(&r) != nil {
			return
		}
		b := appendFrame([]byte("prefix"), &r)[6:]
		got, n, err := decodeFrame(append(b, "trailing"...))
		if err != nil || n != len(b) {
			t.Fatalf("decode: n %d of %d, %v", n, len(b), err)
		}
		if got.Position != pos || got.ArrivalMilli != arrival || got.PartitionKey != key || !bytes.Equal(got.Data, data) {
			t.Fatalf("round trip: got %+v", got)
		}
		// Every strict prefix is short, never a record.
		for _, cut := range []int{0, 3, 4, frameHeaderLen, len(b) - 1} {
			if cut < len(b) {
				if _, _, err := decodeFrame(b[:cut]); !errors.Is(err, errShortFrame) {
					t.Fatalf("prefix of %d bytes: %v, want short frame", cut, err)
				}
			}
		}
		// Any single flipped bit is caught.
		for _, i := range []int{0, 5, 13, 21, len(b) / 2, len(b) - 1} {
			c := bytes.Clone(b)
			c[i] ^= 0x10
			if _, _, err := decodeFrame(c); err == nil {
				t.Fatalf("bit flip at %d not detected", i)
			}
		}
	})
}
