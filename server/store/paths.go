package store

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
)

// Data directory layout:
//
//	<dir>/LOCK                         flock'd while a process has the store open
//	<dir>/meta                         the metadata document (SaveMeta), after a checksum line
//	<dir>/meta.tmp                     a SaveMeta in progress
//	<dir>/streams/<stream dir>/<shard index>/<first position>.seg
//	<dir>/streams/<stream dir>/<shard index>/jumps                     gaps a truncating recovery left in the positions
//	<dir>/streams/<stream dir>/<shard index>/<segment>.damaged-<ns>   copy of a segment a recovery cut
//	<dir>/streams/<stream dir>/<shard index>/<segment>.orphan-<ns>    later segments it set aside
//	<dir>/trash-*                      a DropStream in progress
const (
	metaFile   = "meta"
	lockFile   = "LOCK"
	streamsDir = "streams"
	trashPfx   = "trash-"
)

// lowercase base32 with the extended-hex alphabet: no dots, no slashes, and no
// two names that differ only by case, so the encoding is safe on
// case-insensitive file systems too.
var dirEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// streamDirName returns the directory name of a stream incarnation. No stream
// name, "." and ".." included, can produce a path element that leaves the
// data directory. Names too long for one path element are hashed.
func streamDirName(stream string, created int64) string {
	c := strconv.FormatInt(created, 10)
	if enc := dirEncoding.EncodeToString([]byte(stream)); len(enc) <= 200 {
		return "s" + enc + "-" + c
	}
	sum := sha256.Sum256([]byte(stream))
	return "h" + hex.EncodeToString(sum[:]) + "-" + c
}

func (d *Disk) streamPath(stream string, created int64) string {
	return filepath.Join(d.dir, streamsDir, streamDirName(stream, created))
}

func (d *Disk) logPath(id LogID) string {
	return filepath.Join(d.streamPath(id.Stream, id.Created), strconv.Itoa(id.ShardIdx))
}

// mkdirDurable creates dir and any missing parents up to root, fsyncing each
// parent whose entries changed.
func (d *Disk) mkdirDurable(root, dir string) error {
	if _, err := d.fs.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != root && len(parent) > len(root) {
		if err := d.mkdirDurable(root, parent); err != nil {
			return err
		}
	}
	if err := d.fs.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return d.fs.SyncDir(parent)
}
