package server_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

// failingCommit is a memory store whose Commit fails, once armed, with an
// error naming a local file, as a disk store's fsync error would.
type failingCommit struct {
	store.Store
	armed atomic.Bool
}

func (f *failingCommit) Commit() error {
	if f.armed.Load() {
		return &os.PathError{Op: "fsync", Path: "/var/lib/ksp-secret/streams/s/shard-0.log", Err: syscall.EIO}
	}
	return f.Store.Commit()
}

func TestInternalFailureNamesNoLocalPath(t *testing.T) {
	st := &failingCommit{Store: store.NewMemory()}
	srv := servertest.Start(t, server.Options{Store: st})
	c := servertest.Client(t, srv, servertest.NoRetries)
	servertest.CreateStream(t, c, "s", 1)
	st.armed.Store(true)
	_, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, kds.ErrCodeInternalFailure, "Internal service failure (request ")
	if strings.Contains(err.Error(), "/var/lib") || strings.Contains(err.Error(), "shard-0.log") {
		t.Fatalf("the error answer names a local file: %v", err)
	}
}
