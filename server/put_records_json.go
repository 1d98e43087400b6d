package server

import (
	"slices"
	"strings"
	"unsafe"

	"github.com/ksp-project/ksp/internal/jsonwire"
)

// decodeJSON is the fast path for the hottest request, a PutRecords JSON
// body as the SDKs write it: an object with StreamName, StreamARN and
// Records, each entry with Data, PartitionKey and ExplicitHashKey as strings
// without escapes. The request and its entries live in sc. When pooledData
// (the store copies records out on Append), data is in sc's slab and keys
// alias the body; else both are fresh memory of their own. Anything else (escapes,
// nulls, unknown members, other types, bad base64) returns ok=false and the
// caller decodes with encoding/json, which also words the errors.
func (sc *putScratch) decodeJSON(body []byte, pooledData bool) (req *putRecordsInput, ok bool) {
	p := jsonwire.Scanner{B: body}
	if !p.Consume('{') {
		return nil, false
	}
	req = &sc.req
	*req = putRecordsInput{}
	// The data is at most three quarters of the body: one allocation.
	slab := sc.slab[:0]
	if !pooledData {
		slab = nil
	}
	slab = slices.Grow(slab, len(body)/4*3+3)
	if pooledData {
		defer func() { sc.slab = slab[:0] }()
	}
	spans := sc.spans[:0]
	first := true
	for {
		if p.Consume('}') {
			break
		}
		if !first && !p.Consume(',') {
			return nil, false
		}
		first = false
		key, ok := p.Str()
		if !ok || !p.Consume(':') {
			return nil, false
		}
		switch string(key) {
		case "StreamName", "StreamARN":
			v, ok := p.Str()
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
			if !p.Consume('[') || req.Records != nil {
				return nil, false
			}
			req.Records = sc.entries[:0]
			for i := 0; !p.Consume(']'); i++ {
				if i > 0 && !p.Consume(',') {
					return nil, false
				}
				if !p.Consume('{') {
					return nil, false
				}
				var e putRecordsEntry
				ks := keySpans{pk: span{-1, -1}}
				for j := 0; !p.Consume('}'); j++ {
					if j > 0 && !p.Consume(',') {
						return nil, false
					}
					k, ok := p.Str()
					if !ok || !p.Consume(':') {
						return nil, false
					}
					if string(k) == "Data" {
						if e.Data != nil {
							return nil, false
						}
						start := len(slab)
						// Within the slab's capacity: no copy, and no
						// entry's data moves.
						if slab, ok = p.AppendBase64(slab); !ok {
							return nil, false
						}
						e.Data = slab[start:len(slab):len(slab)]
						continue
					}
					v, ok := p.Str()
					if !ok {
						return nil, false
					}
					a := p.I - 1 - len(v) // v ends just before the closing quote
					switch string(k) {
					case "PartitionKey":
						if ks.pk.a >= 0 {
							return nil, false
						}
						ks.pk = span{a, a + len(v)}
					case "ExplicitHashKey":
						if ks.hasEH {
							return nil, false
						}
						ks.eh, ks.hasEH = span{a, a + len(v)}, true
					default:
						return nil, false
					}
				}
				if e.Data == nil || ks.pk.a < 0 {
					return nil, false // let encoding/json and validation report it
				}
				req.Records = append(req.Records, e)
				spans = append(spans, ks)
			}
			sc.entries = req.Records[:0]
		default:
			return nil, false
		}
	}
	sc.spans = spans[:0]
	if !p.End() {
		return nil, false
	}
	keys := sc.keys[:0]
	for i := range spans {
		keys = append(keys, "")
		if spans[i].hasEH {
			keys = append(keys, "")
		}
	}
	sc.keys = keys[:0]
	// The keys are strings over the body's bytes when nothing keeps them
	// past the call (pooledData: the store copies them, and the body is
	// given back only after the answer is written); else one fresh string
	// holds them all.
	var arena string
	if pooledData {
		arena = unsafe.String(unsafe.SliceData(body), len(body))
	} else {
		arena = compactKeys(body, spans)
	}
	k := 0
	for i, ks := range spans {
		keys[k] = arena[ks.pk.a:ks.pk.b]
		req.Records[i].PartitionKey = &keys[k]
		k++
		if ks.hasEH {
			keys[k] = arena[ks.eh.a:ks.eh.b]
			req.Records[i].ExplicitHashKey = &keys[k]
			k++
		}
	}
	return req, true
}

// compactKeys copies the keys spans name out of body into one string, and
// moves the spans to where they are in it.
func compactKeys(body []byte, spans []keySpans) string {
	total := 0
	for _, ks := range spans {
		total += ks.pk.b - ks.pk.a + ks.eh.b - ks.eh.a
	}
	var sb strings.Builder
	sb.Grow(total)
	move := func(s *span) {
		n := sb.Len()
		sb.Write(body[s.a:s.b])
		*s = span{n, sb.Len()}
	}
	for i := range spans {
		move(&spans[i].pk)
		if spans[i].hasEH {
			move(&spans[i].eh)
		}
	}
	return sb.String()
}

// span is a part of the body, [a, b).
type span struct{ a, b int }

// keySpans is where an entry's keys are in the body.
type keySpans struct {
	pk, eh span
	hasEH  bool
}
