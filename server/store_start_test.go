package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

// startWith fills a store in a new directory with two streams and their
// records, closes it, and returns the directory and the ledger.
func storeWithRecords(t *testing.T) *faultServer {
	t.Helper()
	f := &faultServer{t: t, dir: t.TempDir(), acked: map[string]map[string]string{}, pad: 100}
	f.start()
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if _, err := f.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			f.mustPut(name, 20)
		}
	}
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// newServerErr opens the store and a server on dir and returns why the
// start failed ("" when it did not).
func newServerErr(t *testing.T, dir string, opts store.DiskOptions) string {
	t.Helper()
	d, err := store.OpenDisk(dir, opts)
	if err != nil {
		return err.Error()
	}
	srv, err := server.New(server.Options{Store: d})
	if err != nil {
		d.Close()
		return err.Error()
	}
	srv.Close()
	return ""
}

func globOne(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("nothing matches %s", pattern)
	}
	return m[0]
}

// Files missing or damaged next to existing data: the server refuses to
// start with a message naming what is wrong, and never starts empty.
func TestStartRefusesMissingOrDamagedFiles(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
	}{
		{"metadata file deleted", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "meta")); err != nil {
				t.Fatal(err)
			}
		}, []string{"meta is missing", "2 stream directories"}},
		{"shard directory deleted", func(t *testing.T, dir string) {
			if err := os.RemoveAll(globOne(t, filepath.Join(dir, "streams", "*", "1"))); err != nil {
				t.Fatal(err)
			}
		}, []string{"shardId-000000000001", "has no directory"}},
		{"metadata checksum wrong", func(t *testing.T, dir string) {
			path := filepath.Join(dir, "meta")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-3] ^= 1
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"checksum mismatch"}},
		{"flipped byte mid-segment", func(t *testing.T, dir string) {
			seg := globOne(t, filepath.Join(dir, "streams", "*", "0", "*.seg"))
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(seg, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"corruption in shard 0", "--recover=truncate-and-keep-copy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := storeWithRecords(t)
			c.damage(t, f.dir)
			msg := newServerErr(t, f.dir, store.DiskOptions{})
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("start error %q; want it to say %q", msg, w)
				}
			}
		})
	}
}

// With RecoverTruncate the server starts over a corrupt segment, serves
// the records before the damage and never issues an acknowledged sequence
// number again.
func TestStartTruncatesCorruptionWhenTold(t *testing.T) {
	f := storeWithRecords(t)
	seg := globOne(t, filepath.Join(f.dir, "streams", "*", "0", "*.seg"))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f.disk = store.DiskOptions{Recover: store.RecoverTruncate}
	f.start()
	// Forget what the damage took: the records of that shard at and after it.
	lost := map[string]bool{}
	for _, name := range []string{"a", "b"} {
		kept := map[string]bool{}
		for _, sh := range []string{"shardId-000000000000", "shardId-000000000001"} {
			for _, r := range servertest.ReadShard(t, f.c, name, sh) {
				kept[aws.ToString(r.SequenceNumber)] = true
			}
		}
		for seq := range f.acked[name] {
			if !kept[seq] {
				delete(f.acked[name], seq)
				lost[seq] = true
			}
		}
	}
	if len(lost) == 0 {
		t.Fatal("the flipped byte lost nothing")
	}
	for range 5 {
		f.mustPut("a", 20)
		f.mustPut("b", 20)
	}
	for _, acked := range f.acked {
		for seq := range acked {
			if lost[seq] {
				t.Fatalf("sequence number %s of a lost record was issued again", seq)
			}
		}
	}
	f.restart()
	f.verify()
}

// A store written by an earlier version may record a closed shard's end
// past its last committed record (positions assigned to puts that failed):
// the end is reconciled at start, so readers reach the shard's end and its
// children.
func TestStartReconcilesClosedShardEnd(t *testing.T) {
	f := &faultServer{t: t, dir: t.TempDir(), acked: map[string]map[string]string{}}
	f.start()
	ctx := context.Background()
	servertest.CreateStream(t, f.c, "s", 1)
	f.mustPut("s", 7)
	if _, err := f.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	f.mustPut("s", 7)
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite the metadata as the earlier version would have: no checksum
	// line, and the parent ending 5 positions past its last record.
	path := filepath.Join(f.dir, "meta")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, doc, _ := strings.Cut(string(b), "\n")
	if !strings.Contains(doc, `"endPos":7`) {
		t.Fatalf("metadata does not end the parent at 7: %s", doc)
	}
	doc = strings.Replace(doc, `"endPos":7`, `"endPos":12`, 1)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	f.start()
	f.verify()
}
