package store_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/server/store"
)

// frameSize is the on-disk size of rec(i) (see frame.go).
func frameSize(i int) int64 { r := rec(i); return int64(26 + len(r.PartitionKey) + len(r.Data)) }

// writeLog creates a log of n records in dir (one segment unless segBytes
// says otherwise) and closes the store.
func writeLog(t *testing.T, dir string, n int, segBytes int64) {
	t.Helper()
	d, err := store.OpenDisk(dir, store.DiskOptions{SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, d, lid)
	appendCommit(t, d, l, 0, n)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestDiskRecoverTail(t *testing.T) {
	const n = 50
	// A length of 64, then 64 bytes that are not a frame.
	garbage := "\x40\x00\x00\x00" + strings.Repeat("garbage!", 8)
	lastFrame := frameSize(n - 1)
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		keep   uint64 // records left
		reason string
		cut    int64 // bytes cut
	}{
		{
			name: "truncated mid-frame",
			damage: func(t *testing.T, path string) {
				if err := os.Truncate(path, fileSize(t, path)-lastFrame/2); err != nil {
					t.Fatal(err)
				}
			},
			keep: n - 1, reason: "short frame", cut: lastFrame - lastFrame/2,
		},
		{
			name: "truncated inside the length",
			damage: func(t *testing.T, path string) {
				if err := os.Truncate(path, fileSize(t, path)-lastFrame+2); err != nil {
					t.Fatal(err)
				}
			},
			keep: n - 1, reason: "short frame", cut: 2,
		},
		{
			name: "flipped byte in last frame",
			damage: func(t *testing.T, path string) {
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				off := fileSize(t, path) - lastFrame + 30
				b := make([]byte, 1)
				f.ReadAt(b, off)
				b[0] ^= 0x40
				if _, err := f.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
			},
			keep: n - 1, reason: "bad frame checksum", cut: lastFrame,
		},
		{
			name: "garbage after last frame",
			damage: func(t *testing.T, path string) {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				f.Write([]byte(garbage))
			},
			keep: n, reason: "bad frame checksum", cut: int64(len(garbage)),
		},
		{
			name: "zeros after last frame",
			damage: func(t *testing.T, path string) {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				f.Write(make([]byte, 4096))
			},
			keep: n, reason: "bad frame length", cut: 4096,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, n, 0)
			segs := segments(t, dir, lid)
			if len(segs) != 1 {
				t.Fatalf("%d segments", len(segs))
			}
			path := segs[0]
			c.damage(t, path)
			damaged := fileSize(t, path)

			var logs logBuffer
			d := openDisk(t, dir, store.DiskOptions{Logger: logs.logger()})
			l := mustLog(t, d, lid)
			checkLog(t, l, 0, c.keep)
			out := logs.String()
			if !strings.Contains(out, "cut torn or corrupt tail") ||
				!strings.Contains(out, "file="+path) ||
				!strings.Contains(out, "offset="+strconv.FormatInt(damaged-c.cut, 10)) ||
				!strings.Contains(out, "bytes="+strconv.FormatInt(c.cut, 10)) ||
				!strings.Contains(out, c.reason) {
				t.Fatalf("recovery log does not say what was cut (want offset %d, bytes %d, %q):\n%s",
					damaged-c.cut, c.cut, c.reason, out)
			}
			if got := fileSize(t, path); got != damaged-c.cut {
				t.Fatalf("file is %d bytes after recovery, want %d", got, damaged-c.cut)
			}
			// Appends continue right after the last good record.
			appendCommit(t, d, l, int(c.keep), 10)
			checkLog(t, l, 0, c.keep+10)
			d.Close()

			logs = logBuffer{}
			d = openDisk(t, dir, store.DiskOptions{Logger: logs.logger()})
			checkLog(t, mustLog(t, d, lid), 0, c.keep+10)
			if out := logs.String(); strings.Contains(out, "cut") {
				t.Fatalf("second recovery cut again:\n%s", out)
			}
		})
	}
}

// Corruption inside an earlier segment stops the log at the last good record
// before it; later segments are set aside, and it is reported.
func TestDiskRecoverMiddle(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 300, 2048)
	segs := segments(t, dir, lid)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	victim := segs[1]
	first, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(victim), ".seg"), 10, 64)
	// Flip a byte inside the victim's third record.
	off := frameSize(int(first)) + frameSize(int(first)+1) + 10
	f, err := os.OpenFile(victim, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 1
	f.WriteAt(b, off)
	f.Close()

	var logs logBuffer
	d := openDisk(t, dir, store.DiskOptions{SegmentBytes: 2048, Logger: logs.logger()})
	l := mustLog(t, d, lid)
	keep := first + 2
	checkLog(t, l, 0, keep)
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "corruption inside the log") ||
		!strings.Contains(out, "file="+victim) || !strings.Contains(out, "set_aside") {
		t.Fatalf("recovery did not report the corruption:\n%s", out)
	}
	if got := segments(t, dir, lid); len(got) != 2 {
		t.Fatalf("segments after recovery: %v", got)
	}
	// The damaged segment is copied aside whole, the later ones moved aside.
	orphans, _ := filepath.Glob(filepath.Join(filepath.Dir(victim), "*.orphan-*"))
	if len(orphans) != len(segs)-1 {
		t.Fatalf("%d segments set aside, want %d", len(orphans), len(segs)-1)
	}
	appendCommit(t, d, l, int(keep), 100)
	checkLog(t, l, 0, keep+100)
	d.Close()
	d = openDisk(t, dir, store.DiskOptions{SegmentBytes: 2048})
	checkLog(t, mustLog(t, d, lid), 0, keep+100)
}

// A bit flipped after recovery (bit rot under a running store) is reported by
// Read as ErrCorrupt, never returned as data.
func TestDiskReadDetectsCorruption(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, store.DiskOptions{})
	l := mustLog(t, d, lid)
	appendCommit(t, d, l, 0, 10)
	path := segments(t, dir, lid)[0]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := frameSize(0) + frameSize(1) + frameSize(2) + 24
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x80
	f.WriteAt(b, off)
	f.Close()
	recs, err := l.Read(0, 100, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Read over a flipped byte = %d records, %v; want a checksum error", len(recs), err)
	}
	if len(recs) != 3 {
		t.Fatalf("Read returned %d good records before the bad one, want 3", len(recs))
	}
}

// A segment missing from the middle of a log (a lost file) ends the log at
// the last record before the hole.
func TestDiskRecoverHole(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 300, 2048)
	segs := segments(t, dir, lid)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	if err := os.Remove(segs[2]); err != nil {
		t.Fatal(err)
	}
	end, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(segs[2]), ".seg"), 10, 64)
	var logs logBuffer
	d := openDisk(t, dir, store.DiskOptions{SegmentBytes: 2048, Logger: logs.logger()})
	l := mustLog(t, d, lid)
	checkLog(t, l, 0, end)
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "not contiguous") {
		t.Fatalf("hole not reported:\n%s", out)
	}
	appendCommit(t, d, l, int(end), 10)
	checkLog(t, l, 0, end+10)
}
