package server_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

const fileLimitChild = "KSP_TEST_FILE_LIMIT_CHILD"

// A stream resharded back and forth creates and closes shards far past the
// process's open-file limit (64, set with setrlimit in a child process)
// without a failure: closed and idle shard logs give their handles back.
func TestShardsFarPastOpenFileLimit(t *testing.T) {
	if os.Getenv(fileLimitChild) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestShardsFarPastOpenFileLimit$", "-test.v")
		cmd.Env = append(os.Environ(), fileLimitChild+"="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
		return
	}
	const limit = 64
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	f := &faultServer{t: t, dir: os.Getenv(fileLimitChild), fs: nil, acked: map[string]map[string]string{}}
	f.disk = store.DiskOptions{MaxOpenFiles: 24}
	f.start()
	ctx := context.Background()
	servertest.CreateStream(t, f.c, "flip", 1)
	servertest.CreateStream(t, f.c, "steady", 1)
	for i := range 100 {
		target := int32(2)
		if i%2 == 1 {
			target = 1
		}
		if _, err := f.c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("flip"), TargetShardCount: aws.Int32(target), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
			t.Fatalf("flip %d: %v", i, err)
		}
		f.mustPut("flip", 4)
		f.mustPut("steady", 1)
	}
	if n := len(servertest.Shards(t, f.c, "flip")); n < 2*limit {
		t.Fatalf("only %d shards created; want far past the limit of %d", n, limit)
	}
	f.restart()
	f.verify()
}
