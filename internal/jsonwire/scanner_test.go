package jsonwire

import (
	"encoding/json"
	"testing"
)

// TestScannerNumber takes exactly the numbers encoding/json takes, and
// returns their text.
func TestScannerNumber(t *testing.T) {
	for _, in := range []string{"0", "-0", "12", "-12", "1.5", "1e3", "1E+3", "1.25e-3", " 7",
		"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x1", "--1"} {
		p := Scanner{B: []byte(in)}
		got, ok := p.Number()
		ok = ok && p.End()
		var n json.Number
		want := json.Unmarshal([]byte(in), &n) == nil
		if ok != want {
			t.Errorf("Number(%q) ok = %v, encoding/json ok = %v", in, ok, want)
		}
		if ok && string(got) != string(n) {
			t.Errorf("Number(%q) = %q, want %q", in, got, n)
		}
	}
}

// TestScannerStr takes strings without escapes in valid UTF-8, refuses the rest.
func TestScannerStr(t *testing.T) {
	for in, want := range map[string]bool{
		`"abc"`: true, `"ünï"`: true, `""`: true,
		`"a\"b"`: false, "\"a\nb\"": false, "\"\xff\"": false, `"abc`: false, `abc`: false,
	} {
		p := Scanner{B: []byte(in)}
		if _, ok := p.Str(); ok != want {
			t.Errorf("Str(%q) ok = %v, want %v", in, ok, want)
		}
	}
}

// TestAppendStringMatchesEncodingJSON: what AppendString writes decodes to
// the string (invalid UTF-8 as U+FFFD, as encoding/json writes it).
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\n\r\t\x01\x1f", "ünï €", "\u2028\u2029", "bad\xffutf8"} {
		got := AppendString(nil, s)
		want, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", s, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if a != b {
			t.Errorf("AppendString(%q) decodes to %q, encoding/json's to %q", s, a, b)
		}
	}
}

// TestScannerAppendStr reads what encoding/json reads, and refuses
// surrogate escapes and invalid UTF-8, which decoders replace.
func TestScannerAppendStr(t *testing.T) {
	for in, want := range map[string]bool{
		`"abc"`: true, `"a\"b\\c\/d\b\f\n\r\t"`: true, `"\u00e9\u2028\u0000x"`: true, `"ü\nü"`: true, `""`: true,
		`"\ud83d\udd11"`: false, `"\ud83d"`: false, `"\'"`: false, `"\x41"`: false, `"\u12"`: false, "\"\xff\\n\"": false,
		"\"a\nb\"": false, `"abc`: false, `"ab\`: false,
	} {
		p := Scanner{B: []byte(in)}
		got, ok := p.AppendStr([]byte("prefix:"))
		if ok != want {
			t.Errorf("AppendStr(%s) ok = %v, want %v", in, ok, want)
			continue
		}
		var s string
		if ok && (json.Unmarshal([]byte(in), &s) != nil || string(got) != "prefix:"+s) {
			t.Errorf("AppendStr(%s) = %q, encoding/json reads %q", in, got, s)
		}
	}
}
