package server

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// decodePutRecordsJSON is the fast path for the hottest request, a
// PutRecords JSON body as the SDKs write it: an object with StreamName,
// StreamARN and Records, each entry with Data, PartitionKey and
// ExplicitHashKey as strings without escapes. All data lands in one buffer
// and all keys in one string, so a request costs a handful of allocations
// instead of several per record. Anything else (escapes, nulls, unknown
// members, other types, bad base64) returns ok=false and the caller decodes
// with encoding/json, which also words the errors.
func decodePutRecordsJSON(body []byte) (req *putRecordsInput, ok bool) {
	p := jsonScanner{b: body}
	if !p.consume('{') {
		return nil, false
	}
	req = new(putRecordsInput)
	type span struct{ a, b int }
	var (
		slab  = make([]byte, 0, len(body)*3/4+4)
		pks   []span
		ehks  []span
		hasEH []bool
	)
	first := true
	for {
		if p.consume('}') {
			break
		}
		if !first && !p.consume(',') {
			return nil, false
		}
		first = false
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return nil, false
		}
		switch string(key) {
		case "StreamName", "StreamARN":
			v, ok := p.str()
			if !ok {
				return nil, false
			}
			s := string(v)
			if string(key) == "StreamName" {
				req.StreamName = &s
			} else {
				req.StreamARN = &s
			}
		case "Records":
			if !p.consume('[') || req.Records != nil {
				return nil, false
			}
			req.Records = make([]putRecordsEntry, 0, 16)
			for i := 0; !p.consume(']'); i++ {
				if i > 0 && !p.consume(',') {
					return nil, false
				}
				if !p.consume('{') {
					return nil, false
				}
				var e putRecordsEntry
				pk, eh, has := span{-1, -1}, span{}, false
				for j := 0; !p.consume('}'); j++ {
					if j > 0 && !p.consume(',') {
						return nil, false
					}
					k, ok := p.str()
					if !ok || !p.consume(':') {
						return nil, false
					}
					var v []byte
					if string(k) == "Data" {
						v, ok = p.rawStr() // base64 decoding rejects what str would
					} else {
						v, ok = p.str()
					}
					a := p.i - 1 - len(v) // v ends just before the closing quote
					if !ok {
						return nil, false
					}
					switch string(k) {
					case "Data":
						if e.Data != nil {
							return nil, false
						}
						start := len(slab)
						n, err := base64.StdEncoding.Decode(slab[start:cap(slab)], v)
						if err != nil {
							return nil, false
						}
						slab = slab[:start+n]
						e.Data = slab[start : start+n : start+n]
					case "PartitionKey":
						if pk.a >= 0 {
							return nil, false
						}
						pk = span{a, a + len(v)}
					case "ExplicitHashKey":
						if has {
							return nil, false
						}
						eh, has = span{a, a + len(v)}, true
					default:
						return nil, false
					}
				}
				if e.Data == nil || pk.a < 0 {
					return nil, false // let encoding/json and validation report it
				}
				req.Records = append(req.Records, e)
				pks = append(pks, pk)
				ehks = append(ehks, eh)
				hasEH = append(hasEH, has)
			}
		default:
			return nil, false
		}
	}
	if !p.end() {
		return nil, false
	}
	// One string holds every key; entries point into it.
	total := 0
	for i := range pks {
		total += pks[i].b - pks[i].a
		if hasEH[i] {
			total += ehks[i].b - ehks[i].a
		}
	}
	var sb strings.Builder
	sb.Grow(total)
	for i := range pks {
		sb.Write(body[pks[i].a:pks[i].b])
		if hasEH[i] {
			sb.Write(body[ehks[i].a:ehks[i].b])
		}
	}
	arena := sb.String()
	keys := make([]string, len(pks)+countTrue(hasEH))
	off, k := 0, 0
	for i := range pks {
		n := pks[i].b - pks[i].a
		keys[k] = arena[off : off+n]
		req.Records[i].PartitionKey = &keys[k]
		off += n
		k++
		if hasEH[i] {
			n := ehks[i].b - ehks[i].a
			keys[k] = arena[off : off+n]
			req.Records[i].ExplicitHashKey = &keys[k]
			off += n
			k++
		}
	}
	return req, true
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// jsonScanner reads the small JSON subset the fast path accepts.
type jsonScanner struct {
	b []byte
	i int
}

func (p *jsonScanner) skip() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) consume(c byte) bool {
	p.skip()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid UTF-8.
func (p *jsonScanner) str() ([]byte, bool) {
	if !p.consume('"') {
		return nil, false
	}
	start := p.i
	ascii := true
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		switch {
		case c == '"':
			v := p.b[start:p.i]
			p.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// rawStr reads a string up to the next quote without looking inside it: for
// base64 data, whose decoder refuses escapes, control and non-ASCII bytes.
func (p *jsonScanner) rawStr() ([]byte, bool) {
	if !p.consume('"') {
		return nil, false
	}
	n := bytes.IndexByte(p.b[p.i:], '"')
	if n < 0 {
		return nil, false
	}
	v := p.b[p.i : p.i+n]
	p.i += n + 1
	// The base64 decoder skips raw CR and LF, which JSON does not allow.
	return v, bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0
}

func (p *jsonScanner) end() bool {
	p.skip()
	return p.i == len(p.b)
}
