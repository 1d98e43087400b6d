package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecoverSegment opens a log whose only segment is good frames followed
// by arbitrary bytes. Recovery never panics, never loses a good frame, and
// either cuts a torn tail (nothing valid after the bad bytes) or reports
// corruption starting right after the good frames; told to truncate it
// always opens and continues past every position the bytes may have held.
func FuzzRecoverSegment(f *testing.F) {
	var good []byte
	const n = 5
	for i := range n {
		good = appendFrame(good, &Record{Position: uint64(i), ArrivalMilli: int64(i), PartitionKey: "k", Data: []byte("data")})
	}
	next := appendFrame(nil, &Record{Position: n, ArrivalMilli: n, PartitionKey: "k", Data: []byte("more")})
	f.Add(next[:len(next)-3])                      // torn
	f.Add(append([]byte{0xff, 1, 2, 3}, next...))  // garbage, then a good frame
	f.Add(make([]byte, 100))                       // zeros
	f.Add(append(append([]byte(nil), next...), 9)) // a good frame, then a byte
	f.Fuzz(func(t *testing.T, tail []byte) {
		id := LogID{Stream: "f", Created: 1}
		for _, mode := range []RecoverMode{RecoverRefuse, RecoverTruncate} {
			dir := t.TempDir()
			d, err := OpenDisk(dir, DiskOptions{Fsync: FsyncNever, Recover: mode})
			if err != nil {
				t.Fatal(err)
			}
			logDir := d.logPath(id)
			if err := os.MkdirAll(logDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(logDir, segmentName(0)), append(append([]byte(nil), good...), tail...), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := d.Log(id)
			var ce *CorruptionError
			switch {
			case err == nil:
				_, end, _ := l.Bounds()
				if end < n {
					t.Fatalf("mode %v: log ends at %d; the %d good frames must stay", mode, end, n)
				}
				recs, err := l.Read(0, 100, 1<<20)
				if err != nil || len(recs) < n {
					t.Fatalf("mode %v: read %d records, %v", mode, len(recs), err)
				}
			case errors.As(err, &ce) && mode == RecoverRefuse:
				if ce.From < n {
					t.Fatalf("corruption reported from %d, inside the good frames", ce.From)
				}
			default:
				t.Fatalf("mode %v: %v", mode, err)
			}
			d.Close()
		}
	})
}
