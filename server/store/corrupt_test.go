package store_test

import (
	"errors"
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
	t.Parallel()
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
			d := openDisk(t, dir, store.DiskOptions{Logger: logs.Logger()})
			l := mustLog(t, d, lid)
			checkLog(t, l, 0, c.keep)
			out := logs.String()
			if !strings.Contains(out, "cut torn tail") ||
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
			d = openDisk(t, dir, store.DiskOptions{Logger: logs.Logger()})
			checkLog(t, mustLog(t, d, lid), 0, c.keep+10)
			if out := logs.String(); strings.Contains(out, "cut") {
				t.Fatalf("second recovery cut again:\n%s", out)
			}
		})
	}
}

// flipByte flips one bit of the file at off.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// dirDigest is the names and contents of every file in dir.
func dirDigest(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(e.Name() + ":" + string(b) + "\n")
	}
	return sb.String()
}

// checkCorruptRefused opens the damaged log with the default mode: it must
// refuse with a CorruptionError naming the shard and the first lost
// position, and change no byte.
func checkCorruptRefused(t *testing.T, dir string, from uint64, what string) {
	t.Helper()
	shardDir := filepath.Dir(segments(t, dir, lid)[0])
	before := dirDigest(t, shardDir)
	var logs logBuffer
	d := openDisk(t, dir, store.DiskOptions{SegmentBytes: 2048, Logger: logs.Logger()})
	_, err := d.Log(lid)
	var ce *store.CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Log over %s = %v; want a CorruptionError", what, err)
	}
	if ce.Stream != lid.Stream || ce.ShardIdx != lid.ShardIdx || ce.From != from || ce.To <= from {
		t.Fatalf("CorruptionError %+v; want stream %q shard %d from position %d", ce, lid.Stream, lid.ShardIdx, from)
	}
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "lost_from_position="+strconv.FormatUint(from, 10)) ||
		!strings.Contains(out, "stream="+lid.Stream) || !strings.Contains(out, "shard_index=0") {
		t.Fatalf("refusal not logged at ERROR with stream, shard and positions:\n%s", out)
	}
	d.Close()
	if after := dirDigest(t, shardDir); after != before {
		t.Fatal("refusing recovery changed the shard directory")
	}
}

// checkTruncated opens the damaged log with RecoverTruncate: records before
// the damage stay, the damaged bytes are kept aside, and new records get
// positions above every position the log ever held (wrote), also after a
// reopen.
func checkTruncated(t *testing.T, dir string, keep, wrote uint64, copies int) {
	t.Helper()
	opts := store.DiskOptions{SegmentBytes: 2048, Recover: store.RecoverTruncate}
	d := openDisk(t, dir, opts)
	l := mustLog(t, d, lid)
	first, next, _ := l.Bounds()
	if first != 0 || next < wrote {
		t.Fatalf("after truncation Bounds = %d %d; want the next position at or above %d", first, next, wrote)
	}
	kept, _ := filepath.Glob(filepath.Join(filepath.Dir(segments(t, dir, lid)[0]), "*.seg.*"))
	if len(kept) != copies {
		t.Fatalf("%d files kept aside (%v), want %d", len(kept), kept, copies)
	}
	recs := []store.Record{rec(int(next))}
	pos, err := l.Append(recs)
	if err != nil || d.Commit() != nil {
		t.Fatalf("Append after truncation: %v", err)
	}
	d.Close()
	d = openDisk(t, dir, opts)
	l = mustLog(t, d, lid)
	var got []uint64
	for from := uint64(0); ; {
		rs, err := l.Read(from, 1000, 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		for _, r := range rs {
			got = append(got, r.Position)
		}
		from = rs[len(rs)-1].Position + 1
	}
	if uint64(len(got)) != keep+1 || got[keep-1] != keep-1 || got[keep] != pos {
		t.Fatalf("after reopen read %d records ending %v; want 0..%d then %d", len(got), got[max(0, len(got)-2):], keep-1, pos)
	}
}

// Corruption in a sealed segment (a flipped bit in its third record): the
// store refuses to open the log and changes nothing; told to truncate, it
// keeps a copy and never reuses a position.
func TestDiskRecoverSealedCorruption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeLog(t, dir, 300, 2048)
	segs := segments(t, dir, lid)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	victim := segs[1]
	first, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(victim), ".seg"), 10, 64)
	flipByte(t, victim, frameSize(int(first))+frameSize(int(first)+1)+10)
	checkCorruptRefused(t, dir, first+2, "a sealed segment")
	// Copies: the damaged segment, and every later one set aside.
	checkTruncated(t, dir, first+2, 300, len(segs)-1)
}

// One flipped bit in the middle of the active segment, with good frames
// after it, is corruption, not a torn tail: nothing is cut by default.
func TestDiskRecoverActiveCorruption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 200
	writeLog(t, dir, n, 0)
	var off int64
	for i := range n / 2 {
		off += frameSize(i)
	}
	flipByte(t, segments(t, dir, lid)[0], off+30)
	checkCorruptRefused(t, dir, n/2, "the middle of the active segment")
	checkTruncated(t, dir, n/2, n, 1)
}

// A bit flipped after recovery (bit rot under a running store) is reported by
// Read as ErrCorrupt, never returned as data.
func TestDiskReadDetectsCorruption(t *testing.T) {
	t.Parallel()
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

// A segment missing from the middle of a log (a lost file) is corruption too.
func TestDiskRecoverHole(t *testing.T) {
	t.Parallel()
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
	checkCorruptRefused(t, dir, end, "a hole")
	checkTruncated(t, dir, end, 300, len(segs)-3)
}
