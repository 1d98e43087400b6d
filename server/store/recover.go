package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// openLog opens the log of id, creating it when missing and recovering it
// otherwise. The rules, in position order from the first segment:
//   - every frame must have a good length and CRC and the next position;
//   - every segment must start where the previous one ended.
//
// At the first violation the log ends at the last good record: a bad frame's
// segment is truncated there, and later segments are renamed aside.
func (d *Disk) openLog(id LogID) (*diskLog, error) {
	dir := d.logPath(id)
	if err := mkdirDurable(filepath.Join(d.dir, streamsDir), dir); err != nil {
		return nil, fmt.Errorf("store: creating %s: %w", dir, err)
	}
	l := &diskLog{d: d, id: id, dir: dir}
	ents, err := os.ReadDir(dir)
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
	logger := d.log.With("stream", id.Stream, "created", id.Created, "shard_index", id.ShardIdx)

	if len(files) == 0 {
		if err := l.createFirst(0); err != nil {
			return nil, err
		}
		return l, nil
	}

	expected := files[0].first
	for i, fi := range files {
		path := filepath.Join(dir, fi.name)
		if fi.first != expected {
			logger.Error("store: segments not contiguous; log ends at the last good record",
				"file", path, "want_first", expected, "has_first", fi.first,
				"set_aside", d.setAside(logger, dir, namesOf(files[i:], func(n named) string { return n.name })))
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
		attrs := []any{"file", path, "offset", s.size, "bytes", bad.fileSize - s.size,
			"reason", bad.reason.Error(), "last_good_position", int64(s.next) - 1}
		last := i == len(files)-1
		if !last {
			// Not a torn write: keep the whole damaged file for inspection
			// before cutting it.
			copyName := fi.name + fmt.Sprintf(".orphan-%d", time.Now().UnixNano())
			if err := copyFile(path, filepath.Join(dir, copyName)); err != nil {
				return nil, fmt.Errorf("store: copying damaged %s aside: %w", path, err)
			}
			attrs = append(attrs, "copied_to", copyName)
		}
		if err := truncateFile(path, s.size); err != nil {
			return nil, fmt.Errorf("store: cutting %s: %w", path, err)
		}
		if last {
			logger.Warn("store: cut torn or corrupt tail", attrs...)
		} else {
			attrs = append(attrs, "set_aside", d.setAside(logger, dir, namesOf(files[i+1:], func(n named) string { return n.name })))
			logger.Error("store: corruption inside the log; log ends at the last good record", attrs...)
		}
		break
	}

	a := l.active()
	a.written = a.size
	f, err := os.OpenFile(a.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if _, err := f.Seek(a.size, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	l.wf = f
	for _, s := range l.segs {
		s.written = s.size
		if s.next > s.first {
			l.lastArrival = s.lastArrival
		}
	}
	l.first = l.segs[0].first
	l.next, l.visible, l.visArrival = expected, expected, l.lastArrival
	return l, nil
}

func namesOf[T any](xs []T, f func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// createFirst starts an empty log at position first.
func (l *diskLog) createFirst(first uint64) error {
	path := filepath.Join(l.dir, segmentName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return fmt.Errorf("store: %w", err)
	}
	l.wf = f
	l.segs = []*segment{{path: path, first: first, next: first}}
	l.first, l.next, l.visible = first, first, first
	return nil
}

// setAside renames segments out of the log (they are kept, not deleted, so
// an operator can look at what was lost) and returns their new names.
func (d *Disk) setAside(logger interface{ Error(string, ...any) }, dir string, names []string) []string {
	var out []string
	suffix := fmt.Sprintf(".orphan-%d", time.Now().UnixNano())
	for _, n := range names {
		to := n + suffix
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(dir, to)); err != nil {
			logger.Error("store: setting segment aside", "file", filepath.Join(dir, n), "err", err)
			// It must not be read as part of the log again.
			os.Remove(filepath.Join(dir, n))
			continue
		}
		out = append(out, to)
	}
	if err := syncDir(dir); err != nil {
		logger.Error("store: syncing directory", "dir", dir, "err", err)
	}
	return out
}

// badTail describes where and why a segment scan stopped early.
type badTail struct {
	fileSize int64
	reason   error
}

// scanSegment reads a segment from its start, checking every frame, and
// returns it with its index built. The segment's size is the end of its last
// good frame; bad says why the scan stopped before the file's end.
func (d *Disk) scanSegment(path string, first uint64) (*segment, *badTail, error) {
	f, err := os.Open(path)
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
			return s, &badTail{fileSize: st.Size(), reason: err}, nil
		}
		return nil, nil, fmt.Errorf("store: scanning %s: %w", path, err)
	}
}

// truncateFile cuts a file at size and makes the cut durable.
func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = datasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyFile copies src to a new file dst and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
