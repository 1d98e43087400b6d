package jsonwire

import (
	"bytes"
	"encoding/base64"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner reads the small JSON subset the fast decoders accept: structure,
// strings without escapes, and integers. Every method reports false on
// anything else, and the caller falls back to a complete decoder.
type Scanner struct {
	B []byte // the document
	I int    // the offset of the next byte to read
}

func (p *Scanner) skip() {
	for p.I < len(p.B) {
		switch p.B[p.I] {
		case ' ', '\t', '\n', '\r':
			p.I++
		default:
			return
		}
	}
}

// Consume reads c, after any whitespace.
func (p *Scanner) Consume(c byte) bool {
	p.skip()
	if p.I < len(p.B) && p.B[p.I] == c {
		p.I++
		return true
	}
	return false
}

// Peek returns the next byte after any whitespace, without reading it.
func (p *Scanner) Peek() (byte, bool) {
	p.skip()
	if p.I < len(p.B) {
		return p.B[p.I], true
	}
	return 0, false
}

// Str reads a string without escapes or control characters, in valid UTF-8,
// and returns its contents (aliasing B).
func (p *Scanner) Str() ([]byte, bool) {
	if !p.Consume('"') {
		return nil, false
	}
	start := p.I
	ascii := true
	for ; p.I < len(p.B); p.I++ {
		c := p.B[p.I]
		switch {
		case c == '"':
			v := p.B[start:p.I]
			p.I++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// AppendStr reads a string and appends its value to dst. It takes what Str
// takes, and the escapes \" \\ \/ \b \f \n \r \t and \uXXXX outside the
// surrogate range; anything else (a surrogate escape, which decoders turn
// into U+FFFD when unpaired) reports false.
func (p *Scanner) AppendStr(dst []byte) ([]byte, bool) {
	if !p.Consume('"') {
		return dst, false
	}
	start := p.I
	ascii := true
	for p.I < len(p.B) {
		c := p.B[p.I]
		switch {
		case c == '"':
			v := p.B[start:p.I]
			p.I++
			return append(dst, v...), ascii || utf8.Valid(v)
		case c < 0x20:
			return dst, false
		case c >= 0x80:
			ascii = false
			p.I++
		case c != '\\':
			p.I++
		default:
			if !ascii && !utf8.Valid(p.B[start:p.I]) {
				return dst, false
			}
			dst = append(dst, p.B[start:p.I]...)
			r, n := unescape(p.B[p.I:])
			if n == 0 {
				return dst, false
			}
			dst = utf8.AppendRune(dst, r)
			p.I += n
			start, ascii = p.I, true
		}
	}
	return dst, false
}

// unescape reads one escape at the start of b, and returns its rune and
// length (0: not one AppendStr takes).
func unescape(b []byte) (rune, int) {
	if len(b) < 2 {
		return 0, 0
	}
	switch b[1] {
	case '"', '\\', '/':
		return rune(b[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		if len(b) < 6 {
			return 0, 0
		}
		var r rune
		for _, c := range b[2:6] {
			switch {
			case c >= '0' && c <= '9':
				c -= '0'
			case c >= 'a' && c <= 'f':
				c -= 'a' - 10
			case c >= 'A' && c <= 'F':
				c -= 'A' - 10
			default:
				return 0, 0
			}
			r = r<<4 | rune(c)
		}
		if utf16.IsSurrogate(r) {
			return 0, 0
		}
		return r, 6
	}
	return 0, 0
}

// RawStr reads a string up to the next quote without looking inside it: for
// base64 data, whose decoder refuses escapes, control and non-ASCII bytes.
func (p *Scanner) RawStr() ([]byte, bool) {
	v, ok := p.untilQuote()
	// The base64 decoder skips raw CR and LF, which JSON does not allow.
	return v, ok && bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0
}

// untilQuote reads a string up to the next quote, whatever it holds.
func (p *Scanner) untilQuote() ([]byte, bool) {
	if !p.Consume('"') {
		return nil, false
	}
	n := bytes.IndexByte(p.B[p.I:], '"')
	if n < 0 {
		return nil, false
	}
	v := p.B[p.I : p.I+n]
	p.I += n + 1
	return v, true
}

// Number reads a JSON number and returns its text (aliasing B).
func (p *Scanner) Number() ([]byte, bool) {
	p.skip()
	start := p.I
	if p.I < len(p.B) && p.B[p.I] == '-' {
		p.I++
	}
	digits := p.digits()
	if digits == 0 || (digits > 1 && p.B[p.I-digits] == '0') {
		return nil, false // JSON allows neither "" nor leading zeros
	}
	if p.I < len(p.B) && p.B[p.I] == '.' {
		p.I++
		if p.digits() == 0 {
			return nil, false
		}
	}
	if p.I < len(p.B) && (p.B[p.I] == 'e' || p.B[p.I] == 'E') {
		p.I++
		if p.I < len(p.B) && (p.B[p.I] == '+' || p.B[p.I] == '-') {
			p.I++
		}
		if p.digits() == 0 {
			return nil, false
		}
	}
	return p.B[start:p.I], true
}

func (p *Scanner) digits() int {
	start := p.I
	for p.I < len(p.B) && p.B[p.I] >= '0' && p.B[p.I] <= '9' {
		p.I++
	}
	return p.I - start
}

// End reports that only whitespace is left.
func (p *Scanner) End() bool {
	p.skip()
	return p.I == len(p.B)
}

// AppendBase64 reads a string of standard, padded base64 and appends the
// bytes it encodes to dst, decoding in place of a copy. It takes exactly
// what RawStr and base64.StdEncoding together take: no escapes, control or
// non-ASCII bytes (the decoder refuses them), no line breaks (the decoder
// would skip them; JSON does not allow them raw).
func (p *Scanner) AppendBase64(dst []byte) ([]byte, bool) {
	v, ok := p.untilQuote()
	if !ok {
		return dst, false
	}
	start := len(dst)
	dst = slices.Grow(dst, base64.StdEncoding.DecodedLen(len(v)))
	got, err := base64.StdEncoding.Decode(dst[start:cap(dst)], v)
	if err != nil {
		return dst[:start], false
	}
	// Without line breaks every byte of v is in a quantum: a break the
	// decoder skipped leaves at least a quantum (3 bytes) fewer than the
	// length promises, which padding alone (at most 2) cannot explain. This
	// spares a scan of v for them.
	if len(v)%4 != 0 || got != len(v)/4*3-padding(v) {
		return dst[:start], false
	}
	return dst[:start+got], true
}

// padding counts the '=' ending v (0, 1 or 2 in valid base64).
func padding(v []byte) int {
	n := 0
	for i := len(v) - 1; i >= 0 && n < 2 && v[i] == '='; i-- {
		n++
	}
	return n
}
