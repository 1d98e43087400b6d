package jsonwire

import "testing"

// TestStringLen: StringLen is the length AppendString writes, for every
// kind of byte it escapes or replaces.
func TestStringLen(t *testing.T) {
	for _, s := range []string{"", "pk-1", `a"b\c`, "\n\r\t\x00\x1f\x7f", "é€😀", "\u2028\u2029", "\xff\xfe", "a\xe2\x80", "<&>", "k\"0"} {
		if got, want := StringLen(s), len(AppendString(nil, s)); got != want {
			t.Errorf("StringLen(%q) = %d, AppendString writes %d", s, got, want)
		}
	}
	for _, b := range [][]byte{nil, {}, {1}, {1, 2}, {1, 2, 3}, make([]byte, 100)} {
		if got, want := BlobLen(b), len(AppendBlob(nil, b)); got != want {
			t.Errorf("BlobLen(%d bytes) = %d, AppendBlob writes %d", len(b), got, want)
		}
	}
}

func FuzzStringLen(f *testing.F) {
	f.Add("pk\u2028\xff\n")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := StringLen(s), len(AppendString(nil, s)); got != want {
			t.Fatalf("StringLen(%q) = %d, AppendString writes %d", s, got, want)
		}
	})
}
