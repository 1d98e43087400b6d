package server

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/ksp-project/ksp/internal/cborwire"
)

// decodeCBOR is decodeJSON for a CBOR body as the Java SDK writes it: a map
// of StreamName, StreamARN and Records, each entry a map of Data (a byte
// string), PartitionKey and ExplicitHashKey (text strings), all of definite
// length and without tags. When pooledData the entries' data and keys
// alias the body; else they are fresh memory. Anything else (other types,
// null, duplicate or unknown members, invalid UTF-8, trailing bytes)
// returns ok=false and the caller decodes with fxamacker/cbor, which also
// words the errors.
func (sc *putScratch) decodeCBOR(body []byte, pooledData bool) (req *putRecordsInput, ok bool) {
	r := cborReader{b: body}
	major, fields, ok := r.head()
	if !ok || major != cborwire.Map || fields > 3 {
		return nil, false
	}
	req = &sc.req
	*req = putRecordsInput{}
	spans := sc.spans[:0]
	defer func() { sc.spans = spans[:0] }()
	for range fields {
		key, ok := r.text()
		if !ok {
			return nil, false
		}
		switch string(key) {
		case "StreamName", "StreamARN":
			v, ok := r.text()
			if !ok {
				return nil, false
			}
			ref := &req.StreamName
			if string(key) == "StreamARN" {
				ref = &req.StreamARN
			}
			if *ref != nil {
				return nil, false
			}
			s := string(v)
			*ref = &s
		case "Records":
			major, n, ok := r.head()
			// Each entry takes a byte at least: a count past the body is a
			// lie. None is left to fxamacker/cbor, which decodes it as null.
			if !ok || major != cborwire.Array || req.Records != nil || n == 0 || n > uint64(len(body)-r.i) {
				return nil, false
			}
			req.Records = sc.entries[:0]
			for range n {
				e, ks, ok := r.entry()
				if !ok {
					return nil, false
				}
				req.Records = append(req.Records, e)
				spans = append(spans, ks)
			}
			sc.entries = req.Records[:0]
		default:
			return nil, false
		}
	}
	if r.i != len(body) {
		return nil, false
	}
	if !pooledData {
		total := 0
		for i := range req.Records {
			total += len(req.Records[i].Data)
		}
		slab := make([]byte, 0, total)
		for i := range req.Records {
			start := len(slab)
			slab = append(slab, req.Records[i].Data...)
			req.Records[i].Data = slab[start:len(slab):len(slab)]
		}
	}
	sc.setKeys(req, body, spans, pooledData)
	return req, true
}

// cborReader reads the CBOR subset decodeCBOR accepts.
type cborReader struct {
	b []byte
	i int // the offset of the next byte to read
}

// head reads an item's head: its major type and argument. Indefinite
// lengths, reserved values and heads past the end report false.
func (r *cborReader) head() (major byte, n uint64, ok bool) {
	if r.i >= len(r.b) {
		return 0, 0, false
	}
	c := r.b[r.i]
	r.i++
	major, info := c&0xe0, c&0x1f
	if info < 24 {
		return major, uint64(info), true
	}
	if info > 27 {
		return 0, 0, false
	}
	size := 1 << (info - 24)
	if len(r.b)-r.i < size {
		return 0, 0, false
	}
	switch size {
	case 1:
		n = uint64(r.b[r.i])
	case 2:
		n = uint64(binary.BigEndian.Uint16(r.b[r.i:]))
	case 4:
		n = uint64(binary.BigEndian.Uint32(r.b[r.i:]))
	default:
		n = binary.BigEndian.Uint64(r.b[r.i:])
	}
	r.i += size
	return major, n, true
}

// str reads a string of major type major (bytes or text) and returns where
// its contents are.
func (r *cborReader) str(major byte) (span, bool) {
	m, n, ok := r.head()
	if !ok || m != major || n > uint64(len(r.b)-r.i) {
		return span{}, false
	}
	s := span{r.i, r.i + int(n)}
	r.i = s.b
	return s, major != cborwire.Text || utf8.Valid(r.b[s.a:s.b])
}

// text reads a text string (aliasing b).
func (r *cborReader) text() ([]byte, bool) {
	s, ok := r.str(cborwire.Text)
	return r.b[s.a:s.b], ok
}

// entry reads one entry of Records: its data (aliasing b) and where its
// keys are.
func (r *cborReader) entry() (e putRecordsEntry, ks keySpans, ok bool) {
	major, members, ok := r.head()
	if !ok || major != cborwire.Map || members > 3 {
		return e, ks, false
	}
	ks.pk.a = -1
	for range members {
		key, ok := r.text()
		if !ok {
			return e, ks, false
		}
		var s span
		switch string(key) {
		case "Data":
			if e.Data != nil {
				return e, ks, false
			}
			s, ok = r.str(cborwire.Bytes)
			e.Data = r.b[s.a:s.b:s.b]
		case "PartitionKey":
			if ks.pk.a >= 0 {
				return e, ks, false
			}
			ks.pk, ok = r.str(cborwire.Text)
		case "ExplicitHashKey":
			if ks.hasEH {
				return e, ks, false
			}
			ks.eh, ok = r.str(cborwire.Text)
			ks.hasEH = true
		default:
			return e, ks, false
		}
		if !ok {
			return e, ks, false
		}
	}
	return e, ks, e.Data != nil && ks.pk.a >= 0
}
