package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server/servertest"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory. It needs root:
// others skip; in CI (CI=true) failing to mount is a failure.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if peers.Required() {
			t.Fatal("mounting a tmpfs needs root (CI=true makes a test that cannot run a failure)")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if peers.Required() {
			t.Fatalf("mounting a %s tmpfs on %s: %v", size, dir, err)
		}
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// A real full disk (a 2 MiB tmpfs): puts fill it and then answer
// ServiceUnavailable, a split fails retryably, the server restarts on the
// full disk and serves every acknowledged record; once space is freed
// writes and the split go through without a restart, and after a last
// restart every acknowledged record is there once.
func TestFullTmpfsDuringPutsAndSplit(t *testing.T) {
	mnt := mountTmpfs(t, "2m")
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &faultServer{t: t, dir: filepath.Join(mnt, "store"), acked: map[string]map[string]string{}, pad: 4 << 10}
	f.start()
	ctx := context.Background()
	servertest.CreateStream(t, f.c, "s", 1)
	servertest.CreateStream(t, f.c, "other", 1)
	health := func() int {
		resp, err := http.Get(f.srv.URL() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	full := false
	for range 100 {
		if err := f.put("s", 20); err != nil {
			retryable(t, "PutRecords on a full tmpfs", err, kds.ErrCodeServiceUnavailable)
			full = true
			break
		}
	}
	if !full {
		t.Fatal("100 puts of 20 records never filled a 2 MiB tmpfs")
	}
	if h := health(); h != http.StatusServiceUnavailable {
		t.Fatalf("/health = %d on a full disk, want 503", h)
	}
	split := func() error {
		_, err := f.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
		return err
	}
	retryable(t, "SplitShard on a full tmpfs", split(), kds.ErrCodeServiceUnavailable)

	// Restart on the full disk: the server starts and serves reads.
	f.restart()
	f.verify()

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for i := 0; health() != http.StatusOK; i++ {
		if i == 3000 {
			t.Fatal("/health still degraded 30 s after space was freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.mustPut("s", 5)
	if err := split(); err != nil {
		t.Fatalf("SplitShard after space was freed: %v", err)
	}
	f.mustPut("s", 5)
	f.mustPut("other", 5)
	f.restart()
	f.verify()
}
