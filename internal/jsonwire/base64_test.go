package jsonwire

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// appendBase64Oracle is what AppendBase64 must match: RawStr, then the
// standard decoder.
func appendBase64Oracle(doc []byte) ([]byte, bool) {
	p := Scanner{B: doc}
	v, ok := p.RawStr()
	if !ok {
		return nil, false
	}
	out, err := base64.StdEncoding.DecodeString(string(v))
	return out, err == nil
}

// TestAppendBase64 takes exactly the strings RawStr and the standard
// decoder take together (line breaks refused without a scan for them),
// appends their bytes after what dst holds, and leaves dst as it was on
// refusal.
func TestAppendBase64(t *testing.T) {
	for _, in := range []string{`""`, `"aGk="`, `"aGk"`, `"QQ=="`, `"QUJD"`, `"QUJDRA=="`, `"QQ="`, `"Q==="`,
		"\"QQ==\n\n\n\n\"", "\"\n\n\n\nQQ==\"", "\"QU\r\nJD\"", "\"QUJD\r\n\r\n\"", "\"\r\n\r\nQUJDRA==\"", "\"QUJDRA==\n\"",
		`"aGk\"="`, `"a b="`, `"é"`, `"aGk=`, `aGk=`, `"QUJDRA==QQ=="`} {
		want, wantOK := appendBase64Oracle([]byte(in))
		p := Scanner{B: []byte(in)}
		got, ok := p.AppendBase64([]byte("pre"))
		if ok != wantOK {
			t.Errorf("AppendBase64(%q) ok = %v, want %v", in, ok, wantOK)
			continue
		}
		if !ok {
			want = nil
		}
		if !bytes.Equal(got, append([]byte("pre"), want...)) {
			t.Errorf("AppendBase64(%q) = %q, want %q after pre", in, got, want)
		}
	}
}

func FuzzAppendBase64(f *testing.F) {
	for _, s := range []string{`"aGk="`, "\"QQ==\n\n\n\n\"", `"QUJD"`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		want, wantOK := appendBase64Oracle(doc)
		p := Scanner{B: doc}
		got, ok := p.AppendBase64(nil)
		if ok != wantOK || (ok && !bytes.Equal(got, want)) || (!ok && len(got) != 0) {
			t.Fatalf("AppendBase64(%q) = %q, %v; want %q, %v", doc, got, ok, want, wantOK)
		}
	})
}
