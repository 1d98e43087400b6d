package consumer

import (
	"fmt"
	"testing"
)

// streamOf finds a lease key's stream by its prefix with one look-up, so
// a shard sync or taking round over many streams stays linear in the
// leases: the keys of each followed stream, and only those, are found;
// a key with more after the prefix than a shard id is no stream's.
func TestStreamOfByPrefix(t *testing.T) {
	t.Parallel()
	w := &worker{}
	var fs []followed
	for i := range 100 {
		fs = append(fs, followed{name: fmt.Sprint("s", i), prefix: fmt.Sprintf("123456789012:s%d:%d:", i, 1700000000+i)})
	}
	w.setStreams(fs)
	for _, tc := range []struct {
		key  string
		want string // "" for no stream
	}{
		{"123456789012:s0:1700000000:shardId-000000000000", "s0"},
		{"123456789012:s99:1700000099:shardId-000000000007", "s99"},
		{"123456789012:s99:1700000000:shardId-000000000007", ""}, // another creation
		{"123456789012:s100:1700000100:shardId-000000000000", ""},
		{"123456789012:s1:1700000001:x:shardId-000000000000", ""},
		{"shardId-000000000000", ""},
	} {
		f, ok := w.streamOf(tc.key)
		if ok != (tc.want != "") || f.name != tc.want {
			t.Errorf("streamOf(%q) = %q, %v; want %q", tc.key, f.name, ok, tc.want)
		}
	}
	w.setStreams([]followed{{name: "one"}})
	if f, ok := w.streamOf("shardId-000000000003"); !ok || f.name != "one" {
		t.Errorf("single-stream mode: streamOf = %q, %v; want one", f.name, ok)
	}
}

// BenchmarkStreamOf: the cost of finding a lease's stream does not grow
// with the number of streams followed.
func BenchmarkStreamOf(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n, "-streams"), func(b *testing.B) {
			w := &worker{}
			var fs []followed
			for i := range n {
				fs = append(fs, followed{name: fmt.Sprint("s", i), prefix: fmt.Sprintf("123456789012:s%d:1700000000:", i)})
			}
			w.setStreams(fs)
			key := fs[n-1].prefix + "shardId-000000000000"
			for b.Loop() {
				if _, ok := w.streamOf(key); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}
