package jsonwire

import (
	"bytes"
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

// RawStr reads a string up to the next quote without looking inside it: for
// base64 data, whose decoder refuses escapes, control and non-ASCII bytes.
func (p *Scanner) RawStr() ([]byte, bool) {
	if !p.Consume('"') {
		return nil, false
	}
	n := bytes.IndexByte(p.B[p.I:], '"')
	if n < 0 {
		return nil, false
	}
	v := p.B[p.I : p.I+n]
	p.I += n + 1
	// The base64 decoder skips raw CR and LF, which JSON does not allow.
	return v, bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0
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
