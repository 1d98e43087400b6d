package dynamo_test

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/lease"
)

// testMultiStreamItems: a multi-stream lease ksp creates carries streamName
// and shardId as the KCL's DynamoDBMultiStreamLeaseSerializer writes them, so
// the KCL's list of one stream's leases (a Scan filtered on streamName,
// DynamoDBLeaseRefresher.list) finds it; the KCL's minimal multi-stream item
// (DynamoDBMultiStreamLeaseSerializerTest) reads as a lease of its shard.
func testMultiStreamItems(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	const streamID = "123456789012:test-stream:1"
	key := streamID + ":shardId-000000000001"
	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: key, Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	item := rawGet(t, client, s.Table(), key)
	if got, want := item["streamName"], sAV(streamID); !reflect.DeepEqual(got, want) {
		t.Fatalf("streamName = %#v, want %#v", got, want)
	}
	if got, want := item["shardId"], sAV("shardId-000000000001"); !reflect.DeepEqual(got, want) {
		t.Fatalf("shardId = %#v, want %#v", got, want)
	}
	// A single-stream lease has neither.
	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000009", Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	if item := rawGet(t, client, s.Table(), "shardId-000000000009"); item["streamName"] != nil || item["shardId"] != nil {
		t.Fatalf("single-stream lease has streamName/shardId: %v", item)
	}

	kclKey := streamID + ":shardId-000000000000"
	kclItem := map[string]types.AttributeValue{
		"leaseKey": sAV(kclKey), "leaseCounter": nAV("0"), "ownerSwitchesSinceCheckpoint": nAV("0"),
		"checkpoint": sAV("TRIM_HORIZON"), "checkpointSubSequenceNumber": nAV("0"),
		"streamName": sAV(streamID), "shardId": sAV("shardId-000000000000"), "entityType": sAV("LEASE"),
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: kclItem}); err != nil {
		t.Fatal(err)
	}
	l, err := s.GetLease(ctx, kclKey)
	if err != nil || l.ShardID() != "shardId-000000000000" {
		t.Fatalf("GetLease(%q) = %+v, %v", kclKey, l, err)
	}
	if id, ok := l.StreamIdentifier(); !ok || id.String() != streamID {
		t.Fatalf("StreamIdentifier() = %+v, %v", id, ok)
	}

	out, err := client.Scan(ctx, &dynamodb.ScanInput{
		TableName: aws.String(s.Table()), FilterExpression: aws.String("streamName = :streamName"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":streamName": sAV(streamID)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 2 {
		t.Fatalf("the KCL's scan for stream %s finds %d leases, want 2 (ksp's and the KCL's)", streamID, len(out.Items))
	}
}

// testUnknownAttributesKept: attributes ksp does not model, such as those a
// KCL multi-stream worker or a newer KCL writes, survive every write of
// ksp's, byte for byte.
func testUnknownAttributesKept(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	const key = "shardId-000000000003"
	extra := map[string]types.AttributeValue{
		"streamName":      sAV("123456789012:other:7"),
		"futureAttribute": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": &types.AttributeValueMemberL{Value: []types.AttributeValue{nAV("1"), sAV("x")}}}},
		"futureFlag":      &types.AttributeValueMemberBOOL{Value: true},
	}
	item := map[string]types.AttributeValue{
		"leaseKey": sAV(key), "leaseOwner": sAV("w1"), "leaseCounter": nAV("4"), "ownerSwitchesSinceCheckpoint": nAV("0"),
		"checkpoint": sAV("TRIM_HORIZON"), "checkpointSubSequenceNumber": nAV("0"), "entityType": sAV("LEASE"),
	}
	for k, v := range extra {
		item[k] = v
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: item}); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name string
		do   func(l lease.Lease) (lease.Lease, error)
	}{
		{"renew", func(l lease.Lease) (lease.Lease, error) { return s.RenewLease(ctx, key, "w1", l.LeaseCounter) }},
		{"hand off", func(l lease.Lease) (lease.Lease, error) { return s.HandOffLease(ctx, key, "w1", "w2") }},
		{"prepare", func(l lease.Lease) (lease.Lease, error) {
			return s.PrepareCheckpoint(ctx, key, "w1", l.LeaseCounter, lease.Checkpoint{SequenceNumber: "5"}, []byte("st"))
		}},
		{"checkpoint", func(l lease.Lease) (lease.Lease, error) {
			return s.UpdateCheckpoint(ctx, key, "w1", l.LeaseCounter, lease.Checkpoint{SequenceNumber: "5"})
		}},
		{"evict during hand-off", func(l lease.Lease) (lease.Lease, error) { return s.EvictLease(ctx, key, "w1") }},
		{"take", func(l lease.Lease) (lease.Lease, error) { return s.TakeLease(ctx, key, "w2", l.LeaseCounter, "w3") }},
		{"meta", func(l lease.Lease) (lease.Lease, error) {
			return s.UpdateLeaseMeta(ctx, key, lease.MetaUpdate{ChildShardIDs: []string{"c"}})
		}},
		{"evict", func(l lease.Lease) (lease.Lease, error) { return s.EvictLease(ctx, key, "w3") }},
	}
	l, err := s.GetLease(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		if l, err = w.do(l); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		got := rawGet(t, client, s.Table(), key)
		for k, v := range extra {
			if !reflect.DeepEqual(got[k], v) {
				t.Fatalf("after %s: attribute %s = %#v, want %#v", w.name, k, got[k], v)
			}
		}
	}
}
