package feed

import (
	"bytes"
	"testing"
)

// FuzzScan: any input and delimiter split into chunks that, joined with
// the delimiter, give back the input's non-empty pieces in order, with
// increasing line numbers; key extraction from a JSON field never panics.
func FuzzScan(f *testing.F) {
	f.Add([]byte("{\"user_id\":\"a\"}\n\nnot json\r\n{\"user_id\":1}"), "\n")
	f.Add([]byte("a;;b;"), ";")
	f.Fuzz(func(t *testing.T, data []byte, delim string) {
		if delim == "" {
			return
		}
		var got [][]byte
		line := 0
		err := scan(Input{Name: "in", R: bytes.NewReader(data)}, Options{Delimiter: delim}, func(it Item) error {
			if it.Line <= line {
				t.Fatalf("line %d after %d", it.Line, line)
			}
			line = it.Line
			JSONField("user_id").Key(it)
			got = append(got, it.Data)
			return nil
		})
		if err != nil {
			return // too long: reported, not a panic
		}
		var want [][]byte
		for _, p := range bytes.Split(data, []byte(delim)) {
			if delim == "\n" {
				p = bytes.TrimSuffix(p, []byte("\r"))
			}
			if len(p) > 0 {
				want = append(want, p)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d chunks; want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("chunk %d = %q; want %q", i, got[i], want[i])
			}
		}
	})
}
