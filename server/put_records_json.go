package server

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/ksp-project/ksp/internal/jsonwire"
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
	p := jsonwire.Scanner{B: body}
	if !p.Consume('{') {
		return nil, false
	}
	req = new(putRecordsInput)
	type span struct{ a, b int }
	// Every entry names its partition key once (base64 data holds no
	// quote), so counting the member name sizes the slices once instead of
	// growing them; a key that contains the name only over-sizes them.
	n := bytes.Count(body, []byte(`"PartitionKey"`))
	var (
		slab  = make([]byte, 0, len(body)*3/4+4)
		pks   = make([]span, 0, n)
		ehks  = make([]span, 0, n)
		hasEH = make([]bool, 0, n)
	)
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
			req.Records = make([]putRecordsEntry, 0, n)
			for i := 0; !p.Consume(']'); i++ {
				if i > 0 && !p.Consume(',') {
					return nil, false
				}
				if !p.Consume('{') {
					return nil, false
				}
				var e putRecordsEntry
				pk, eh, has := span{-1, -1}, span{}, false
				for j := 0; !p.Consume('}'); j++ {
					if j > 0 && !p.Consume(',') {
						return nil, false
					}
					k, ok := p.Str()
					if !ok || !p.Consume(':') {
						return nil, false
					}
					var v []byte
					if string(k) == "Data" {
						v, ok = p.RawStr() // base64 decoding rejects what str would
					} else {
						v, ok = p.Str()
					}
					a := p.I - 1 - len(v) // v ends just before the closing quote
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
	if !p.End() {
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
