package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RecoverMode says what opening a log does with corruption (see Disk).
type RecoverMode int

const (
	// RecoverRefuse leaves every byte in place and refuses to open the log
	// with a *CorruptionError, so that an operator decides.
	RecoverRefuse RecoverMode = iota
	// RecoverTruncate copies the damaged segment aside (<name>.damaged-<ns>),
	// renames every later segment aside (<name>.orphan-<ns>), cuts the log at
	// its last good record and continues past every position the damaged
	// bytes may have held, so no position is ever issued twice.
	RecoverTruncate
)

func (m RecoverMode) String() string {
	switch m {
	case RecoverRefuse:
		return "refuse"
	case RecoverTruncate:
		return "truncate-and-keep-copy"
	}
	return fmt.Sprintf("RecoverMode(%d)", int(m))
}

// ParseRecoverMode parses "refuse" or "truncate-and-keep-copy".
func ParseRecoverMode(s string) (RecoverMode, error) {
	switch strings.ToLower(s) {
	case "refuse":
		return RecoverRefuse, nil
	case "truncate-and-keep-copy":
		return RecoverTruncate, nil
	}
	return 0, fmt.Errorf("store: unknown recover mode %q (want refuse or truncate-and-keep-copy)", s)
}

// CorruptionError reports damage found in a shard log at recovery: records
// at positions [From, To) may be lost (To is an upper bound).
type CorruptionError struct {
	Stream   string
	Created  int64
	ShardIdx int
	File     string // the damaged segment, or the first segment after a hole
	Offset   int64
	From, To uint64
	Reason   string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("store: corruption in shard %d of stream %q: %s at offset %d of %s; records at positions %d to %d may be lost (restart with --recover=truncate-and-keep-copy to keep a copy and continue)",
		e.ShardIdx, e.Stream, e.Reason, e.Offset, e.File, e.From, e.To-1)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// jump is a deliberate gap in a log's positions: the segment after position
// from-1 starts at to. A truncating recovery writes one (to the jumps file)
// so the positions the damaged bytes held are never issued again.
type jump struct{ from, to uint64 }

const jumpsFile = "jumps"

// openLog opens the log of id, creating it when missing (create) and
// recovering it otherwise. The rules, in position order from the first
// segment: every frame must have a good length and CRC and the next
// position; every segment must start where the previous one ended (or where
// a recorded jump says).
func (d *Disk) openLog(id LogID, create bool) (*diskLog, error) {
	dir := d.logPath(id)
	l := &diskLog{d: d, id: id, dir: dir}
	if _, err := d.fs.Stat(dir); err != nil {
		if !os.IsNotExist(err) {
			return nil, fmt.Errorf("store: %w", err)
		}
		if !create {
			return nil, fmt.Errorf("%w: shard %d of stream %q has no directory %s", ErrMissing, id.ShardIdx, id.Stream, dir)
		}
		// A log that cannot be created leaves no directory behind (also
		// on a panic on the way).
		done := false
		defer func() {
			if !done {
				if rerr := d.fs.RemoveAll(dir); rerr != nil {
					d.log.Error("store: removing a log that could not be created", "dir", dir, "err", rerr)
				}
			}
		}()
		if err := d.mkdirDurable(filepath.Join(d.dir, streamsDir), dir); err != nil {
			return nil, fmt.Errorf("store: creating %s: %w", dir, err)
		}
		if err := l.createSegment(0); err != nil {
			return nil, err
		}
		done = true
		return l, nil
	}
	ents, err := d.fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	type named struct {
		name  string
		first uint64
	}
	var files []named
	for _, e := range ents {
		if first, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, named{e.Name(), first})
		}
	}
	slices.SortFunc(files, func(a, b named) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	if l.jumps, err = d.readJumps(dir); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		// New, or a crash between creating the directory and its first segment.
		if err := l.createSegment(0); err != nil {
			return nil, err
		}
		l.first, l.next, l.visible = 0, 0, 0
		return l, nil
	}
	logger := d.log.With("stream", id.Stream, "created", id.Created, "shard_index", id.ShardIdx)
	expected := files[0].first
	for i, fi := range files {
		path := filepath.Join(dir, fi.name)
		if fi.first != expected && !l.jumpsTo(expected, fi.first) {
			cerr := &CorruptionError{Stream: id.Stream, Created: id.Created, ShardIdx: id.ShardIdx, File: path,
				From: expected, To: max(expected, fi.first) + 1, Reason: fmt.Sprintf("segments not contiguous: want one starting at position %d", expected)}
			later := namesOf(files[i:], func(n named) string { return n.name })
			if err := d.corrupt(l, logger, cerr, nil, later); err != nil {
				return nil, err
			}
			break
		}
		s, bad, err := d.scanSegment(path, fi.first)
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, s)
		expected = s.next
		if bad == nil {
			continue
		}
		if i == len(files)-1 && !bad.validAfter {
			// A write the crash interrupted: nothing valid follows, so no
			// acknowledged record is lost by cutting it.
			if err := d.truncateFile(path, s.size); err != nil {
				return nil, fmt.Errorf("store: cutting %s: %w", path, err)
			}
			logger.Warn("store: cut torn tail", "file", path, "offset", s.size, "bytes", bad.fileSize-s.size,
				"reason", bad.reason.Error(), "last_good_position", int64(s.next)-1)
			break
		}
		cerr := &CorruptionError{Stream: id.Stream, Created: id.Created, ShardIdx: id.ShardIdx, File: path, Offset: s.size,
			From: s.next, To: s.next + uint64(bad.fileSize-s.size)/frameOverhead + 1, Reason: bad.reason.Error()}
		later := namesOf(files[i+1:], func(n named) string { return n.name })
		if err := d.corrupt(l, logger, cerr, s, later); err != nil {
			return nil, err
		}
		break
	}
	for _, s := range l.segs {
		s.written = s.size
		if s.next > s.first {
			l.lastArrival = s.lastArrival
		}
	}
	a := l.active()
	l.first = l.segs[0].first
	l.next, l.visible, l.visArrival = a.next, a.next, l.lastArrival
	return l, nil
}

// corrupt handles corruption found at recovery: it reports it, and under
// RecoverTruncate keeps a copy of the damaged segment (nil for a hole), sets
// the later segments aside, cuts the damaged one and starts a new segment
// past every position the lost bytes may have held. Under RecoverRefuse it
// changes nothing and returns the error.
func (d *Disk) corrupt(l *diskLog, logger interface{ Error(string, ...any) }, cerr *CorruptionError, damaged *segment, later []string) error {
	attrs := []any{"file", cerr.File, "offset", cerr.Offset, "reason", cerr.Reason,
		"lost_from_position", cerr.From, "lost_to_position", cerr.To - 1, "later_segments", len(later)}
	if d.opts.Recover != RecoverTruncate {
		logger.Error("store: corruption in a shard log; refusing to open it (nothing was changed)", attrs...)
		return cerr
	}
	hwm := cerr.To
	for _, n := range later {
		first, _ := parseSegmentName(n)
		if st, err := d.fs.Stat(filepath.Join(l.dir, n)); err == nil {
			hwm = max(hwm, first+uint64(st.Size())/frameOverhead+1)
		}
	}
	suffix := "-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if damaged != nil {
		cp := damaged.path + ".damaged" + suffix
		if err := d.copyFile(damaged.path, cp); err != nil {
			return fmt.Errorf("store: copying damaged %s aside: %w", damaged.path, err)
		}
		attrs = append(attrs, "copied_to", cp)
	}
	for _, n := range later {
		if err := d.fs.Rename(filepath.Join(l.dir, n), filepath.Join(l.dir, n+".orphan"+suffix)); err != nil {
			return fmt.Errorf("store: setting %s aside: %w", n, err)
		}
	}
	if err := d.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if damaged != nil {
		if err := d.truncateFile(damaged.path, damaged.size); err != nil {
			return fmt.Errorf("store: cutting %s: %w", damaged.path, err)
		}
	}
	from := cerr.From
	if len(l.segs) > 0 {
		from = l.active().next
	}
	l.jumps = append(l.jumps, jump{from, hwm})
	if err := d.writeJumps(l.dir, l.jumps); err != nil {
		return err
	}
	if err := l.createSegment(hwm); err != nil {
		return err
	}
	attrs = append(attrs, "set_aside_suffix", ".orphan"+suffix, "continues_at_position", hwm)
	logger.Error("store: corruption in a shard log; cut at the last good record, damaged bytes kept aside", attrs...)
	return nil
}

func (l *diskLog) jumpsTo(from, to uint64) bool {
	for _, j := range l.jumps {
		if j.from == from && j.to == to {
			return true
		}
	}
	return false
}

func (d *Disk) readJumps(dir string) ([]jump, error) {
	b, err := d.readFile(filepath.Join(dir, jumpsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []jump
	for line := range strings.Lines(string(b)) {
		var j jump
		if _, err := fmt.Sscanf(line, "%d %d", &j.from, &j.to); err != nil || j.to < j.from {
			return nil, fmt.Errorf("store: %s: bad line %q", filepath.Join(dir, jumpsFile), line)
		}
		out = append(out, j)
	}
	return out, nil
}

// writeJumps replaces the jumps file durably (temporary file, fsync, rename,
// directory fsync).
func (d *Disk) writeJumps(dir string, js []jump) error {
	var b []byte
	for _, j := range js {
		b = fmt.Appendf(b, "%d %d\n", j.from, j.to)
	}
	tmp := filepath.Join(dir, jumpsFile+".tmp")
	f, err := d.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, filepath.Join(dir, jumpsFile))
	}
	if err == nil {
		err = d.fs.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("store: writing %s: %w", filepath.Join(dir, jumpsFile), err)
	}
	return nil
}

func namesOf[T any](xs []T, f func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// createSegment starts a new, empty active segment at position first and
// makes its directory entry durable.
func (l *diskLog) createSegment(first uint64) error {
	path := filepath.Join(l.dir, segmentName(first))
	f, err := l.d.openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := l.d.fs.SyncDir(l.dir); err != nil {
		f.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	l.segs = append(l.segs, &segment{path: path, first: first, next: first})
	return nil
}

// badTail describes where and why a segment scan stopped early.
type badTail struct {
	fileSize   int64
	reason     error
	validAfter bool // a valid frame follows the bad one: corruption, not a torn write
}

// scanSegment reads a segment from its start, checking every frame, and
// returns it with its index built. The segment's size is the end of its last
// good frame; bad says why the scan stopped before the file's end.
func (d *Disk) scanSegment(path string, first uint64) (*segment, *badTail, error) {
	f, err := d.openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	s := &segment{path: path, first: first, next: first}
	fr := newFrameReader(f, 0, st.Size(), max(d.opts.ReadChunk, 1<<20), true)
	for {
		b, err := fr.next()
		if err == io.EOF {
			return s, nil, nil
		}
		if err == nil {
			var rec Record
			rec, _, err = decodeFrame(b)
			if err == nil && rec.Position != s.next {
				err = fmt.Errorf("%w: %d where %d belongs", errBadPosition, rec.Position, s.next)
			}
			if err == nil {
				s.addRecord(rec.Position, rec.ArrivalMilli, len(b), d.opts.IndexInterval)
				continue
			}
		}
		if errors.Is(err, errShortFrame) || errors.Is(err, errBadLength) ||
			errors.Is(err, errBadCRC) || errors.Is(err, errBadPosition) {
			bad := &badTail{fileSize: st.Size(), reason: err, validAfter: errors.Is(err, errBadPosition)}
			if !bad.validAfter {
				if bad.validAfter, err = validFrameAfter(f, s.size, st.Size(), s.next); err != nil {
					return nil, nil, fmt.Errorf("store: scanning %s: %w", path, err)
				}
			}
			return s, bad, nil
		}
		return nil, nil, fmt.Errorf("store: scanning %s: %w", path, err)
	}
}

// validFrameAfter reports whether a valid frame starts anywhere in
// (from, end) of f with a position at or after pos: the sign that a bad frame
// is damage inside the log rather than a torn last write. Only offsets whose
// length and position fields are plausible pay for a CRC.
func validFrameAfter(f File, from, end int64, pos uint64) (bool, error) {
	b := make([]byte, end-from)
	if _, err := f.ReadAt(b, from); err != nil && err != io.EOF {
		return false, err
	}
	maxPos := pos + uint64(len(b))/frameOverhead + 1
	for i := 1; i+frameOverhead <= len(b); i++ {
		n, err := peekFrameLen(b[i:])
		if err != nil || i+n > len(b) {
			continue
		}
		if p := binary.LittleEndian.Uint64(b[i+4:]); p < pos || p > maxPos {
			continue
		}
		if _, _, err := decodeFrame(b[i:]); err == nil {
			return true, nil
		}
	}
	return false, nil
}

// truncateFile cuts a file at size and makes the cut durable.
func (d *Disk) truncateFile(path string, size int64) error {
	f, err := d.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyFile copies src to a new file dst and syncs it and its directory.
func (d *Disk) copyFile(src, dst string) error {
	in, err := d.fs.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := d.fs.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(in, 0, st.Size()))
	if err == nil {
		err = out.Datasync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.SyncDir(filepath.Dir(dst))
	}
	return err
}
