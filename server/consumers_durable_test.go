package server_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

// listConsumers returns a stream's consumers as "name status arn created"
// lines, sorted, read through ListStreamConsumers and DescribeStreamConsumer
// (by ARN), which must agree.
func listConsumers(t *testing.T, c *kinesis.Client, streamARN string) []string {
	t.Helper()
	ctx := context.Background()
	out, err := c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN)})
	if err != nil {
		t.Fatalf("ListStreamConsumers: %v", err)
	}
	var lines []string
	for _, x := range out.Consumers {
		line := fmt.Sprint(aws.ToString(x.ConsumerName), " ", x.ConsumerStatus, " ", aws.ToString(x.ConsumerARN), " ", aws.ToTime(x.ConsumerCreationTimestamp).UnixMilli())
		d, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: x.ConsumerARN})
		if err != nil {
			t.Fatalf("DescribeStreamConsumer %s: %v", aws.ToString(x.ConsumerARN), err)
		}
		cd := d.ConsumerDescription
		if got := fmt.Sprint(aws.ToString(cd.ConsumerName), " ", cd.ConsumerStatus, " ", aws.ToString(cd.ConsumerARN), " ", aws.ToTime(cd.ConsumerCreationTimestamp).UnixMilli()); got != line {
			t.Fatalf("DescribeStreamConsumer says %q, ListStreamConsumers %q", got, line)
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return lines
}

// TestRestartKeepsStreamConsumers registers consumers on a disk store and
// restarts: they are listed and described with the same ARNs and creation
// timestamps. A consumer CREATING at the restart is ACTIVE after it, one
// DELETING is gone, as if the create delay had passed.
func TestRestartKeepsStreamConsumers(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func(delay time.Duration) (*server.Server, *kinesis.Client) {
		srv := servertest.Start(t, server.Options{Store: openDisk(t, dir, store.DiskOptions{}), DisableLimits: true, CreateDelay: delay})
		return srv, servertest.Client(t, srv, servertest.NoRetries)
	}
	srv, c := start(0)
	servertest.CreateStream(t, c, "s", 1)
	sARN := streamARN(srv, "s")
	arnA := registerConsumer(t, c, sARN, "a")
	time.Sleep(time.Millisecond) // distinct creation times
	registerConsumer(t, c, sARN, "b")
	before := listConsumers(t, c, sARN)
	if len(before) != 2 || !strings.HasPrefix(before[0], "a ACTIVE "+arnA) || !strings.HasPrefix(before[1], "b ACTIVE ") {
		t.Fatalf("registered %q, want a and b ACTIVE", before)
	}
	srv.Close()

	// A long create delay: c stays CREATING, b DELETING, until the restart.
	srv, c = start(time.Hour)
	if got := listConsumers(t, c, sARN); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("after a restart the consumers are\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(before, "\n"))
	}
	registerConsumer(t, c, sARN, "c")
	if _, err := c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	mid := listConsumers(t, c, sARN)
	if len(mid) != 3 || !strings.HasPrefix(mid[1], "b DELETING ") || !strings.HasPrefix(mid[2], "c CREATING ") {
		t.Fatalf("consumers %q, want b DELETING and c CREATING", mid)
	}
	srv.Close()

	srv, c = start(0)
	got := listConsumers(t, c, sARN)
	want := []string{before[0], strings.Replace(mid[2], " CREATING ", " ACTIVE ", 1)}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after a restart the consumers are\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("b")})
	wantCode(t, err, kds.ErrCodeResourceNotFound, "b")
	// The restored consumer is a real one: it subscribes.
	put(t, c, "s", "r1")
	sub := subscribe(t, efoServer{srv, "h2c"}, arnA, "shardId-000000000000", trimHorizon)
	recs, _ := sub.records(1)
	wantData(t, recs, "r1")
}

// A metadata write that fails during RegisterStreamConsumer or
// DeregisterStreamConsumer answers a retryable error and changes nothing,
// in memory or (after a restart) on disk.
func TestFailedMetadataWriteLeavesConsumers(t *testing.T) {
	f := startFaultServer(t, t.TempDir())
	ctx := context.Background()
	servertest.CreateStream(t, f.c, "s", 1)
	sARN := streamARN(f.srv, "s")
	registerConsumer(t, f.c, sARN, "a")
	before := listConsumers(t, f.c, sARN)
	ops := []struct {
		name string
		do   func() error
	}{
		{"RegisterStreamConsumer", func() error {
			_, err := f.c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("b")})
			return err
		}},
		{"DeregisterStreamConsumer", func() error {
			_, err := f.c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("a")})
			return err
		}},
	}
	for _, fault := range metaWriteFaults {
		for _, op := range ops {
			f.fs.Inject(fault)
			err := op.do()
			retryable(t, fmt.Sprintf("%s with %s failing with %v", op.name, fault.Op, fault.Err), err, kds.ErrCodeServiceUnavailable, kds.ErrCodeInternalFailure)
			f.fs.Clear()
			if got := listConsumers(t, f.c, sARN); strings.Join(got, "\n") != strings.Join(before, "\n") {
				t.Fatalf("%s failed but changed the consumers to %q, were %q", op.name, got, before)
			}
		}
	}
	f.restart()
	if got := listConsumers(t, f.c, sARN); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("after a restart the consumers are %q, were %q", got, before)
	}
	// With a healthy disk both go through, and stay after a restart.
	for _, op := range ops {
		if err := op.do(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
	f.restart()
	got := listConsumers(t, f.c, sARN)
	if len(got) != 1 || !strings.HasPrefix(got[0], "b ACTIVE ") {
		t.Fatalf("after registering b, deregistering a and a restart: %q, want b ACTIVE", got)
	}
}
