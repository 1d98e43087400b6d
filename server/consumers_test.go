package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestStreamConsumerLifecycle: a consumer is CREATING, then ACTIVE on the
// create-delay clock; it is addressed by ARN or by stream ARN and name;
// SubscribeToShard waits for ACTIVE; deregistering passes through DELETING.
func TestStreamConsumerLifecycle(t *testing.T) {
	srv := servertest.Start(t, server.Options{CreateDelay: 100 * time.Millisecond})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "s", 1)
	sARN := streamARN(srv, "s")
	// Held delays: the consumer stays CREATING (then DELETING) until
	// released, however slow the machine.
	release := srv.HoldDelays()
	before := time.Now().Truncate(time.Second)
	out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	cons := out.Consumer
	if cons.ConsumerStatus != types.ConsumerStatusCreating || aws.ToString(cons.ConsumerName) != "app" {
		t.Fatalf("registered %+v, want app CREATING", cons)
	}
	created := aws.ToTime(cons.ConsumerCreationTimestamp)
	wantARN := fmt.Sprintf("%s/consumer/app:%d", sARN, created.Unix())
	if aws.ToString(cons.ConsumerARN) != wantARN || created.Before(before) {
		t.Fatalf("ConsumerARN %s created %v, want %s after %v", aws.ToString(cons.ConsumerARN), created, wantARN, before)
	}
	_, err = c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: cons.ConsumerARN, ShardId: aws.String("shardId-000000000000"), StartingPosition: &trimHorizon})
	wantCode(t, err, kds.ErrCodeResourceInUse, "CREATING")

	describe := func(in *kinesis.DescribeStreamConsumerInput) *types.ConsumerDescription {
		t.Helper()
		out, err := c.DescribeStreamConsumer(ctx, in)
		if err != nil {
			t.Fatalf("DescribeStreamConsumer: %v", err)
		}
		return out.ConsumerDescription
	}
	byARN := &kinesis.DescribeStreamConsumerInput{ConsumerARN: cons.ConsumerARN}
	byName := &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("app")}
	if st := describe(byARN).ConsumerStatus; st != types.ConsumerStatusCreating {
		t.Fatalf("before the create delay ended: %s, want CREATING", st)
	}
	release()
	waitFor(t, "the consumer to become ACTIVE", func() bool { return describe(byARN).ConsumerStatus == types.ConsumerStatusActive })
	d := describe(byName)
	if aws.ToString(d.ConsumerARN) != wantARN || aws.ToString(d.StreamARN) != sARN || d.ConsumerStatus != types.ConsumerStatusActive {
		t.Fatalf("described by name: %+v", d)
	}
	subscribe(t, efoServer{srv, "h2c"}, wantARN, "shardId-000000000000", trimHorizon)

	release = srv.HoldDelays()
	if _, err := c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	if st := describe(byARN).ConsumerStatus; st != types.ConsumerStatusDeleting {
		t.Fatalf("after DeregisterStreamConsumer: %s, want DELETING", st)
	}
	release()
	waitFor(t, "the consumer to be gone", func() bool {
		_, err := c.DescribeStreamConsumer(ctx, byARN)
		return err != nil
	})
	_, err = c.DescribeStreamConsumer(ctx, byARN)
	wantCode(t, err, kds.ErrCodeResourceNotFound, wantARN)
}

// TestListStreamConsumers pages through a stream's consumers, which are
// limited to 20.
func TestListStreamConsumers(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "s", 1)
	sARN := streamARN(srv, "s")
	var want []string
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("app-%02d", i)
		registerConsumer(t, c, sARN, name)
		want = append(want, name)
	}
	_, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("one-too-many")})
	wantCode(t, err, kds.ErrCodeLimitExceeded, "20")

	var got []string
	pages := 0
	in := &kinesis.ListStreamConsumersInput{StreamARN: aws.String(sARN), MaxResults: aws.Int32(7)}
	for p := kinesis.NewListStreamConsumersPaginator(c, in); p.HasMorePages(); pages++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Consumers) > 7 {
			t.Fatalf("a page of %d consumers with MaxResults 7", len(page.Consumers))
		}
		for _, cons := range page.Consumers {
			if cons.ConsumerStatus != types.ConsumerStatusActive {
				t.Fatalf("consumer %s is %s", aws.ToString(cons.ConsumerName), cons.ConsumerStatus)
			}
			got = append(got, aws.ToString(cons.ConsumerName))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", got, pages, want)
	}
	// A deregistered consumer frees its place.
	if _, err := c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("app-00")}); err != nil {
		t.Fatal(err)
	}
	registerConsumer(t, c, sARN, "app-20")
}

// TestStreamConsumerErrors: AWS's error types for names, ARNs and shards
// that do not exist, duplicates, and a consumer of another stream.
func TestStreamConsumerErrors(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "s", 1)
	servertest.CreateStream(t, c, "other", 1)
	sARN, otherARN := streamARN(srv, "s"), streamARN(srv, "other")
	arn := registerConsumer(t, c, sARN, "app")
	missingARN := streamARN(srv, "missing")

	_, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("app")})
	wantCode(t, err, kds.ErrCodeResourceInUse, "app", "already exists")
	_, err = c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(missingARN), ConsumerName: aws.String("app")})
	wantCode(t, err, kds.ErrCodeResourceNotFound, "missing")
	_, err = c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("bad name")})
	wantCode(t, err, kds.ErrCodeValidation, "consumerName")

	for _, tc := range []struct {
		in   *kinesis.DescribeStreamConsumerInput
		code string
		msg  string
	}{
		{&kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(sARN), ConsumerName: aws.String("nope")}, kds.ErrCodeResourceNotFound, "nope"},
		{&kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(sARN + "/consumer/nope:1")}, kds.ErrCodeResourceNotFound, "nope"},
		{&kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(sARN + "/consumer/app:1")}, kds.ErrCodeResourceNotFound, "app:1"}, // an old incarnation
		// The consumer belongs to another stream.
		{&kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(otherARN), ConsumerName: aws.String("app")}, kds.ErrCodeResourceNotFound, "app"},
		{&kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(otherARN), ConsumerARN: aws.String(arn)}, kds.ErrCodeInvalidArgument, "other"},
		{&kinesis.DescribeStreamConsumerInput{ConsumerName: aws.String("app")}, kds.ErrCodeInvalidArgument, "ConsumerARN"},
		{&kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s")}, kds.ErrCodeValidation, "consumerARN"},
	} {
		_, err := c.DescribeStreamConsumer(ctx, tc.in)
		wantCode(t, err, tc.code, tc.msg)
	}
	_, err = c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(otherARN), ConsumerName: aws.String("app")})
	wantCode(t, err, kds.ErrCodeResourceNotFound, "app")
	_, err = c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(missingARN)})
	wantCode(t, err, kds.ErrCodeResourceNotFound, "missing")

	sub := func(consumerARN, shard string) error {
		_, err := c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumerARN), ShardId: aws.String(shard), StartingPosition: &trimHorizon})
		return err
	}
	wantCode(t, sub(arn, "shardId-000000000009"), kds.ErrCodeResourceNotFound, "shardId-000000000009")
	wantCode(t, sub(sARN+"/consumer/nope:1", "shardId-000000000000"), kds.ErrCodeResourceNotFound, "nope")
	_, err = c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber}})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "StartingSequenceNumber")

	// A stream with consumers is deleted only with EnforceConsumerDeletion.
	_, err = c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	wantCode(t, err, kds.ErrCodeResourceInUse, "consumers")
}
