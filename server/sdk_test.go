package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// wantCode fails the test unless err is an AWS error with the given code and
// a message containing every fragment.
func wantCode(t *testing.T, err error, code string, fragments ...string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	for _, f := range fragments {
		if !strings.Contains(ae.ErrorMessage(), f) {
			t.Fatalf("%s message %q does not contain %q", code, ae.ErrorMessage(), f)
		}
	}
}

func TestStreamAdministration(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()

	servertest.CreateStream(t, c, "orders", 3)
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)})
	wantCode(t, err, kds.ErrCodeResourceInUse, "orders", "already exists")
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bad name!"), ShardCount: aws.Int32(1)})
	wantCode(t, err, kds.ErrCodeValidation, "Value 'bad name!' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(strings.Repeat("x", 129)), ShardCount: aws.Int32(1)})
	wantCode(t, err, kds.ErrCodeValidation, "Member must have length less than or equal to 128")
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("huge"), ShardCount: aws.Int32(100000)})
	wantCode(t, err, kds.ErrCodeLimitExceeded, "shard limit")
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("noshards")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "ShardCount")

	// On-demand streams start with 4 shards.
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(servertest.Shards(t, c, "od")); got != 4 {
		t.Fatalf("on-demand stream has %d shards, want 4", got)
	}

	d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	sd := d.StreamDescription
	arn := "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
	if aws.ToString(sd.StreamARN) != arn || sd.StreamStatus != types.StreamStatusActive || len(sd.Shards) != 3 ||
		aws.ToInt32(sd.RetentionPeriodHours) != 24 || aws.ToBool(sd.HasMoreShards) || sd.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Fatalf("unexpected description %+v", sd)
	}
	if sd.StreamCreationTimestamp == nil || time.Since(*sd.StreamCreationTimestamp) > time.Minute {
		t.Fatalf("creation timestamp %v", sd.StreamCreationTimestamp)
	}
	if got := aws.ToString(sd.Shards[0].HashKeyRange.EndingHashKey); got != "113427455640312821154458202477256070484" {
		t.Fatalf("shard 0 ends at %s", got)
	}
	// DescribeStream paging with Limit and ExclusiveStartShardId.
	d, err = c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("orders"), Limit: aws.Int32(2)})
	if err != nil || len(d.StreamDescription.Shards) != 2 || !aws.ToBool(d.StreamDescription.HasMoreShards) {
		t.Fatalf("DescribeStream Limit 2: %v %+v", err, d)
	}
	d, err = c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("orders"), ExclusiveStartShardId: d.StreamDescription.Shards[1].ShardId})
	if err != nil || len(d.StreamDescription.Shards) != 1 || aws.ToBool(d.StreamDescription.HasMoreShards) || aws.ToString(d.StreamDescription.Shards[0].ShardId) != "shardId-000000000002" {
		t.Fatalf("DescribeStream after shard 1: %v %+v", err, d)
	}
	// StreamARN addressing.
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn)})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 3 || aws.ToString(sum.StreamDescriptionSummary.StreamName) != "orders" {
		t.Fatalf("DescribeStreamSummary by ARN: %v %+v", err, sum)
	}
	_, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("missing")})
	wantCode(t, err, kds.ErrCodeResourceNotFound, "Stream missing under account 000000000000 not found.")
	_, err = c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("orders"), Limit: aws.Int32(0)})
	wantCode(t, err, kds.ErrCodeValidation, "at 'limit'", "greater than or equal to 1")

	// ListStreams paging.
	for i := range 5 {
		servertest.CreateStream(t, c, fmt.Sprintf("page-%d", i), 1)
	}
	var names []string
	in := &kinesis.ListStreamsInput{Limit: aws.Int32(3)}
	for pages := 0; ; pages++ {
		out, err := c.ListStreams(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.StreamSummaries) != len(out.StreamNames) {
			t.Fatalf("summaries %d != names %d", len(out.StreamSummaries), len(out.StreamNames))
		}
		names = append(names, out.StreamNames...)
		if !aws.ToBool(out.HasMoreStreams) {
			break
		}
		in = &kinesis.ListStreamsInput{Limit: aws.Int32(3), NextToken: out.NextToken}
	}
	if want := "od orders page-0 page-1 page-2 page-3 page-4"; strings.Join(names, " ") != want {
		t.Fatalf("ListStreams = %v, want %s", names, want)
	}
	_, err = c.ListStreams(ctx, &kinesis.ListStreamsInput{NextToken: aws.String("garbage")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "NextToken")

	// ListShards paging and ExclusiveStartShardId.
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("orders"), MaxResults: aws.Int32(2)})
	if err != nil || len(ls.Shards) != 2 || ls.NextToken == nil {
		t.Fatalf("ListShards page 1: %v %+v", err, ls)
	}
	ls2, err := c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: ls.NextToken})
	if err != nil || len(ls2.Shards) != 1 || ls2.NextToken != nil || aws.ToString(ls2.Shards[0].ShardId) != "shardId-000000000002" {
		t.Fatalf("ListShards page 2: %v %+v", err, ls2)
	}
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: ls.NextToken, StreamName: aws.String("orders")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "NextToken")
	ls, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("orders"), ExclusiveStartShardId: aws.String("shardId-000000000000")})
	if err != nil || len(ls.Shards) != 2 {
		t.Fatalf("ListShards after shard 0: %v %+v", err, ls)
	}
	for _, ft := range []types.ShardFilterType{types.ShardFilterTypeAtLatest, types.ShardFilterTypeAtTrimHorizon, types.ShardFilterTypeFromTrimHorizon} {
		ls, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("orders"), ShardFilter: &types.ShardFilter{Type: ft}})
		if err != nil || len(ls.Shards) != 3 {
			t.Fatalf("ListShards filter %s: %v %+v", ft, err, ls)
		}
	}
	ls, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("orders"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000001")}})
	if err != nil || len(ls.Shards) != 1 {
		t.Fatalf("ListShards AFTER_SHARD_ID: %v %+v", err, ls)
	}
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("orders"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId}})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "AFTER_SHARD_ID")

	// Retention.
	_, err = c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("orders"), RetentionPeriodHours: aws.Int32(48)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("orders"), RetentionPeriodHours: aws.Int32(30)})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "can not be shorter than existing retention period (48 hours)")
	_, err = c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("orders"), RetentionPeriodHours: aws.Int32(12)})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "Minimum allowed retention period is 24 hours")
	_, err = c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("orders"), RetentionPeriodHours: aws.Int32(36)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("orders"), RetentionPeriodHours: aws.Int32(9000)})
	wantCode(t, err, kds.ErrCodeValidation, "retentionPeriodHours")
	sum, _ = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
	if aws.ToInt32(sum.StreamDescriptionSummary.RetentionPeriodHours) != 36 {
		t.Fatalf("retention = %d, want 36", aws.ToInt32(sum.StreamDescriptionSummary.RetentionPeriodHours))
	}

	// Tags, by name and by ARN.
	_, err = c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("orders"), Tags: map[string]string{"team": "data", "env": "dev"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: aws.String(arn), Tags: map[string]string{"cost": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("orders"), Limit: aws.Int32(2)})
	if err != nil || len(tags.Tags) != 2 || !aws.ToBool(tags.HasMoreTags) || aws.ToString(tags.Tags[0].Key) != "cost" {
		t.Fatalf("ListTagsForStream: %v %+v", err, tags)
	}
	_, err = c.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("orders"), TagKeys: []string{"env"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UntagResource(ctx, &kinesis.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: []string{"cost"}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil || len(rt.Tags) != 1 || aws.ToString(rt.Tags[0].Key) != "team" || aws.ToString(rt.Tags[0].Value) != "data" {
		t.Fatalf("ListTagsForResource: %v %+v", err, rt)
	}
	many := map[string]string{}
	for i := range 11 {
		many[fmt.Sprint("k", i)] = "v"
	}
	_, err = c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("orders"), Tags: many})
	wantCode(t, err, kds.ErrCodeValidation, "tags")
	_, err = c.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/nope")})
	wantCode(t, err, kds.ErrCodeResourceNotFound)

	// DescribeLimits and UpdateStreamMode.
	lim, err := c.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{})
	if err != nil || aws.ToInt32(lim.ShardLimit) != 500 || aws.ToInt32(lim.OpenShardCount) != 12 || aws.ToInt32(lim.OnDemandStreamCount) != 1 {
		t.Fatalf("DescribeLimits: %v %+v", err, lim)
	}
	_, err = c.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "already in ON_DEMAND mode")

	// Delete.
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("orders")})
	wantCode(t, err, kds.ErrCodeResourceNotFound)
	_, err = c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("orders")})
	wantCode(t, err, kds.ErrCodeResourceNotFound)

	// Not implemented yet: an explicit error naming the operation.
	_, err = c.GetResourcePolicy(ctx, &kinesis.GetResourcePolicyInput{ResourceARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/od")})
	wantCode(t, err, kds.ErrCodeUnknownOperation, "GetResourcePolicy")
}

func TestCreateDelay(t *testing.T) {
	srv := servertest.Start(t, server.Options{CreateDelay: 150 * time.Millisecond})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	// Held delays: CREATING and DELETING last until released, however
	// slow the machine.
	release := srv.HoldDelays()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("slow"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("slow")})
	if err != nil || d.StreamDescriptionSummary.StreamStatus != types.StreamStatusCreating {
		t.Fatalf("right after CreateStream: %v %+v", err, d)
	}
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("slow"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, kds.ErrCodeResourceNotFound)
	release()
	if err := servertest.WaitActive(ctx, c, "slow"); err != nil {
		t.Fatal(err)
	}
	release = srv.HoldDelays()
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("slow")}); err != nil {
		t.Fatal(err)
	}
	d, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("slow")})
	if err != nil || d.StreamDescriptionSummary.StreamStatus != types.StreamStatusDeleting {
		t.Fatalf("right after DeleteStream: %v %+v", err, d)
	}
	release()
	w := kinesis.NewStreamNotExistsWaiter(c, func(o *kinesis.StreamNotExistsWaiterOptions) { o.MinDelay = 20 * time.Millisecond })
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("slow")}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestPutAndGetRecords(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "events", 2)
	start := time.Now()

	// PutRecord: hashing by partition key, explicit hash keys, ordering.
	r1, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("a"), Data: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	// md5("a") = 0cc175b9..., in the lower half: shard 0.
	if aws.ToString(r1.ShardId) != "shardId-000000000000" || len(aws.ToString(r1.SequenceNumber)) != 56 {
		t.Fatalf("PutRecord a -> %s %s", aws.ToString(r1.ShardId), aws.ToString(r1.SequenceNumber))
	}
	r2, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("a"), Data: []byte("two"),
		ExplicitHashKey: aws.String("340282366920938463463374607431768211455"), SequenceNumberForOrdering: r1.SequenceNumber})
	if err != nil || aws.ToString(r2.ShardId) != "shardId-000000000001" {
		t.Fatalf("PutRecord with EHK: %v %+v", err, r2)
	}
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("a"), Data: []byte("x"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "Invalid ExplicitHashKey", "340282366920938463463374607431768211456")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("a"), Data: []byte("x"), ExplicitHashKey: aws.String("12x")})
	wantCode(t, err, kds.ErrCodeValidation, "Value '12x' at 'explicitHashKey'")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String(strings.Repeat("p", 257)), Data: []byte("x")})
	wantCode(t, err, kds.ErrCodeValidation, "at 'partitionKey'", "less than or equal to 256")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("k"), Data: make([]byte, 1<<20)})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "MaxRecordSize of 1048576")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, kds.ErrCodeResourceNotFound)

	// PutRecords: 500 entries, results in request order.
	var entries []types.PutRecordsRequestEntry
	for i := range 500 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("key-", i%37)), Data: []byte(fmt.Sprint("rec-", i))})
	}
	pr, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: entries})
	if err != nil || aws.ToInt32(pr.FailedRecordCount) != 0 || len(pr.Records) != 500 {
		t.Fatalf("PutRecords: %v %+v", err, pr)
	}
	lastSeq := map[string]string{}
	for i, r := range pr.Records {
		shard, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
		if prev, ok := lastSeq[shard]; ok && kds.CompareSequenceNumbers(prev, seq) >= 0 {
			t.Fatalf("record %d: sequence %s not after %s on %s", i, seq, prev, shard)
		}
		lastSeq[shard] = seq
	}
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: append(entries, entries[0])})
	wantCode(t, err, kds.ErrCodeValidation, "at 'records'", "less than or equal to 500")
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String(""), Data: []byte("x")}}})
	wantCode(t, err, kds.ErrCodeValidation, "Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1")
	big := make([]types.PutRecordsRequestEntry, 6)
	for i := range big {
		big[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: make([]byte, 1000_000)}
	}
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: big})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "request limit")

	// Read everything back: every record once, in order per shard.
	got := map[string][]types.Record{}
	for _, sh := range servertest.Shards(t, c, "events") {
		got[aws.ToString(sh.ShardId)] = servertest.ReadShard(t, c, "events", aws.ToString(sh.ShardId))
	}
	if n := len(got["shardId-000000000000"]) + len(got["shardId-000000000001"]); n != 502 {
		t.Fatalf("read %d records, want 502", n)
	}
	if first := got["shardId-000000000000"][0]; string(first.Data) != "one" || aws.ToString(first.SequenceNumber) != aws.ToString(r1.SequenceNumber) ||
		first.ApproximateArrivalTimestamp.Before(start.Add(-time.Second)) || first.ApproximateArrivalTimestamp.After(time.Now().Add(time.Second)) {
		t.Fatalf("first record %+v", first)
	}
	bySeq := map[string]bool{}
	for _, recs := range got {
		for i, r := range recs {
			bySeq[aws.ToString(r.SequenceNumber)] = true
			if i > 0 && kds.CompareSequenceNumbers(aws.ToString(recs[i-1].SequenceNumber), aws.ToString(r.SequenceNumber)) >= 0 {
				t.Fatal("records out of order")
			}
		}
	}
	for _, r := range pr.Records {
		if !bySeq[aws.ToString(r.SequenceNumber)] {
			t.Fatalf("record %s not read back", aws.ToString(r.SequenceNumber))
		}
	}

	// Iterator types.
	shard0 := "shardId-000000000000"
	iter := func(typ types.ShardIteratorType, seq *string, ts *time.Time) (*string, error) {
		out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String(shard0), ShardIteratorType: typ, StartingSequenceNumber: seq, Timestamp: ts})
		if err != nil {
			return nil, err
		}
		return out.ShardIterator, nil
	}
	read := func(it *string, limit int32) *kinesis.GetRecordsOutput {
		t.Helper()
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(limit)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	recs0 := got[shard0]
	it, err := iter(types.ShardIteratorTypeAtSequenceNumber, recs0[5].SequenceNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out := read(it, 2); len(out.Records) != 2 || aws.ToString(out.Records[0].SequenceNumber) != aws.ToString(recs0[5].SequenceNumber) || aws.ToInt64(out.MillisBehindLatest) < 0 {
		t.Fatalf("AT_SEQUENCE_NUMBER read %+v", out.Records)
	}
	it, _ = iter(types.ShardIteratorTypeAfterSequenceNumber, recs0[5].SequenceNumber, nil)
	if out := read(it, 1); aws.ToString(out.Records[0].SequenceNumber) != aws.ToString(recs0[6].SequenceNumber) {
		t.Fatal("AFTER_SEQUENCE_NUMBER did not start after the number")
	}
	it, _ = iter(types.ShardIteratorTypeLatest, nil, nil)
	out := read(it, 10)
	if len(out.Records) != 0 || aws.ToInt64(out.MillisBehindLatest) != 0 {
		t.Fatalf("LATEST returned %d records", len(out.Records))
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("a"), Data: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	if out2 := read(out.NextShardIterator, 10); len(out2.Records) != 1 || string(out2.Records[0].Data) != "late" {
		t.Fatalf("LATEST then put: %+v", out2.Records)
	}
	future := time.Now().Add(time.Hour)
	_, err = iter(types.ShardIteratorTypeAtTimestamp, nil, &future)
	wantCode(t, err, kds.ErrCodeInvalidArgument, "timestampInMillis")
	past := start.Add(-time.Minute)
	it, err = iter(types.ShardIteratorTypeAtTimestamp, nil, &past)
	if err != nil {
		t.Fatal(err)
	}
	if out := read(it, 1); string(out.Records[0].Data) != "one" {
		t.Fatalf("AT_TIMESTAMP in the past read %q", out.Records[0].Data)
	}
	now := time.Now()
	it, _ = iter(types.ShardIteratorTypeAtTimestamp, nil, &now)
	if out := read(it, 10); len(out.Records) != 0 {
		t.Fatalf("AT_TIMESTAMP now read %d records", len(out.Records))
	}
	_, err = iter(types.ShardIteratorTypeTrimHorizon, recs0[0].SequenceNumber, nil)
	wantCode(t, err, kds.ErrCodeInvalidArgument, "TRIM_HORIZON")
	_, err = iter(types.ShardIteratorTypeAtSequenceNumber, nil, nil)
	wantCode(t, err, kds.ErrCodeInvalidArgument, "AT_SEQUENCE_NUMBER")
	_, err = iter(types.ShardIteratorTypeAtSequenceNumber, got["shardId-000000000001"][0].SequenceNumber, nil)
	wantCode(t, err, kds.ErrCodeInvalidArgument, "It encodes shardId-000000000001, while it was used in a call to a shard with shardId-000000000000")
	_, err = iter(types.ShardIteratorTypeAtSequenceNumber, aws.String("12345"), nil)
	wantCode(t, err, kds.ErrCodeInvalidArgument, "StartingSequenceNumber 12345", "is invalid")
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String("shardId-000000000009"), ShardIteratorType: types.ShardIteratorTypeLatest})
	wantCode(t, err, kds.ErrCodeResourceNotFound, "shardId-000000000009")
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String(shard0), ShardIteratorType: "SOMEWHERE"})
	wantCode(t, err, kds.ErrCodeValidation, "Value 'SOMEWHERE' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set")

	// Tampered, foreign and garbage iterators.
	good, _ := iter(types.ShardIteratorTypeTrimHorizon, nil, nil)
	b := []byte(*good)
	b[10] ^= 1
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(string(b))})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "Invalid ShardIterator.")
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAA")})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "Invalid ShardIterator.")
	other := servertest.Start(t, server.Options{DisableLimits: true})
	oc := servertest.Client(t, other, servertest.NoRetries)
	_, err = oc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: good})
	wantCode(t, err, kds.ErrCodeInvalidArgument, "Invalid ShardIterator.")
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: good, Limit: aws.Int32(10001)})
	wantCode(t, err, kds.ErrCodeValidation, "at 'limit'")

	// A deleted and re-created stream does not honour old iterators.
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("events")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: good})
	wantCode(t, err, kds.ErrCodeResourceNotFound)
	time.Sleep(2 * time.Millisecond)
	servertest.CreateStream(t, c, "events", 2)
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: good})
	wantCode(t, err, kds.ErrCodeResourceNotFound)
	if bytes.Equal([]byte(*good), nil) {
		t.Fatal("unreachable")
	}
}

func TestIteratorExpires(t *testing.T) {
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	now := time.Now()
	clock := func() time.Time {
		<-mu
		defer func() { mu <- struct{}{} }()
		return now
	}
	advance := func(d time.Duration) {
		<-mu
		now = now.Add(d)
		mu <- struct{}{}
	}
	srv := servertest.Start(t, server.Options{Now: clock})
	c := servertest.Client(t, srv, servertest.NoRetries)
	ctx := context.Background()
	servertest.CreateStream(t, c, "s", 1)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	advance(4 * time.Minute)
	out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatalf("4-minute-old iterator: %v", err)
	}
	advance(5*time.Minute + time.Second)
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator})
	wantCode(t, err, kds.ErrCodeExpiredIterator, "Iterator expired", "tolerated delay of 300000 milliseconds")
}
