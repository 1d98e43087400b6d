package consumer_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/kcltable"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// A lease table as a KCL 3.5 application leaves it: its leases (entityType
// LEASE), held by a Java worker that died, next to the items that are not
// leases (leader lock, migration marker, worker metrics). One ksp worker
// takes the dead worker's leases over, a second one joins and gets its even
// share, every record is processed, and the items that are not leases are
// never touched.
func TestKCL35LeaseTable(t *testing.T) {
	t.Parallel()
	const table, stream = "kcl35-app", "kcl35"
	ddbClient, store := dynaliteTable(t, table)

	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, stream, 4)
	prod := newProducer(client, stream, 24)
	for range 5 {
		prod.round(t)
	}

	others := kcltable.NonLeaseItems("java-worker-dead", "java-worker-gone")
	for _, it := range others {
		if _, err := ddbClient.PutItem(bg, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	for i, sh := range servertest.Shards(t, client, stream) {
		it := map[string]ddb.AttributeValue{
			"leaseKey": sAV(aws.ToString(sh.ShardId)), "leaseOwner": sAV("java-worker-dead"), "leaseCounter": nAV(fmt.Sprint(100 + i)),
			"ownerSwitchesSinceCheckpoint": nAV("0"), "checkpoint": sAV("TRIM_HORIZON"), "checkpointSubSequenceNumber": nAV("0"),
			"startingHashKey": sAV(aws.ToString(sh.HashKeyRange.StartingHashKey)), "endingHashKey": sAV(aws.ToString(sh.HashKeyRange.EndingHashKey)),
			"throughputKBps": nAV("0.5"), "entityType": sAV(kcltable.EntityLease),
		}
		if _, err := ddbClient.PutItem(bg, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}

	sk := newSink()
	opts := func(id string) []consumer.Option {
		return append(fast(stream, client, store, id), consumer.WithHandler(sk.handler(id)), consumer.WithFailoverTime(time.Second))
	}
	start(t, opts("ksp-1")...)
	waitFor(t, 20*time.Second, "ksp-1 taking the dead Java worker's 4 leases", func() bool {
		o := owners(t, store)
		return o["ksp-1"] == 4 && len(o) == 1
	})
	start(t, opts("ksp-2")...)
	waitFor(t, 20*time.Second, "ksp-1 and ksp-2 at 2 leases each", func() bool {
		o := owners(t, store)
		return o["ksp-1"] == 2 && o["ksp-2"] == 2 && len(o) == 2
	})
	waitFor(t, 20*time.Second, "every record", func() bool { return sk.unique() == prod.total() })

	leases, err := store.ListLeases(bg)
	if err != nil || len(leases) != 4 {
		t.Fatalf("ListLeases = %d leases, %v; want the 4 shard leases", len(leases), err)
	}
	for _, want := range others {
		key := want["leaseKey"].(*ddb.AttributeValueMemberS).Value
		out, err := ddbClient.GetItem(bg, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]ddb.AttributeValue{"leaseKey": sAV(key)}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out.Item, want) {
			t.Errorf("item %q changed:\n got  %#v\n want %#v", key, out.Item, want)
		}
	}
	scan, err := ddbClient.Scan(bg, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(scan.Items), len(others)+4; got != want {
		t.Errorf("table holds %d items, want %d (4 leases and %d others)", got, want, len(others))
	}
	for _, it := range scan.Items {
		if v, ok := it["entityType"].(*ddb.AttributeValueMemberS); !ok || v.Value == "" {
			t.Errorf("item %v has no entityType", it["leaseKey"])
		}
	}
}
