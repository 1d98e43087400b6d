package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/internal/dynamoattr"
	"github.com/ksp-project/ksp/internal/kcltable"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/lease/leasetest"
)

var ctx = context.Background()

func newClient(url string, hc aws.HTTPClient) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   hc,
	})
}

var tables atomic.Int64

func newTable(t *testing.T, client *dynamodb.Client) *dynamo.Store {
	t.Helper()
	s, err := dynamo.New(client, fmt.Sprintf("ksp-lease-test-%d", tables.Add(1)), dynamo.WithPollInterval(10e6))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustTable(t *testing.T, s *dynamo.Store) {
	t.Helper()
	if _, err := s.CreateTableIfNotExists(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitUntilTableExists(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDynamo runs every dynamo test against one dynalite.
func TestDynamo(t *testing.T) {
	t.Parallel()
	p := peers.StartT(t, peers.Dynalite, peers.Options{})
	client := newClient(p.URL, nil)

	t.Run("Conformance", func(t *testing.T) {
		leasetest.Run(t, func(t *testing.T) lease.Store { return newTable(t, client) })
	})
	t.Run("TableLikeKCL", func(t *testing.T) { testTableLikeKCL(t, client) })
	t.Run("ReadsKCLItems", func(t *testing.T) { testReadsKCLItems(t, client) })
	t.Run("WritesKCLItems", func(t *testing.T) { testWritesKCLItems(t, client) })
	t.Run("RetriedWriteThatSucceeded", func(t *testing.T) { testRetriedWrite(t, p.URL) })
	t.Run("Paging", func(t *testing.T) { testPaging(t, client) })
	t.Run("CorruptItemLeftOut", func(t *testing.T) { testCorruptItemLeftOut(t, client) })
	t.Run("NonLeaseItemsSkippedAndKept", func(t *testing.T) { testNonLeaseItems(t, client) })
	t.Run("OwnerIndexQueried", func(t *testing.T) { testOwnerIndexQueried(t, p.URL) })
	t.Run("NoOwnerIndexScans", func(t *testing.T) { testNoOwnerIndexScans(t, client) })
	t.Run("MultiStreamItemsLikeKCL", func(t *testing.T) { testMultiStreamItems(t, client) })
	t.Run("UnknownAttributesKept", func(t *testing.T) { testUnknownAttributesKept(t, client) })
	t.Run("FleetItemsLikeKCL", func(t *testing.T) { testFleetItemsLikeKCL(t, client) })
	t.Run("LegacyLeaderLock", func(t *testing.T) { testLegacyLeaderLock(t, client) })
	t.Run("StoreOverLateHTTP11", func(t *testing.T) { testStoreOverLateHTTP11(t, p.URL) })
}

// testNonLeaseItems: the items a KCL 3.5 application keeps in its lease
// table besides leases (and an item with entityType "lease", which the KCL's
// case-sensitive check does not take for a lease) are not leases to any
// read, no write changes them, and they survive byte for byte.
func testNonLeaseItems(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	others := kcltable.NonLeaseItems("java-worker-1", "java-worker-2")
	others = append(others, map[string]types.AttributeValue{"leaseKey": sAV("shardId-000000000077"), "leaseCounter": nAV("3"), "entityType": sAV("lease")})
	for _, item := range others {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	if empty, err := s.IsTableEmpty(ctx); err != nil || !empty {
		t.Fatalf("IsTableEmpty with only non-lease items = %v, %v; want true", empty, err)
	}
	if ls, err := s.ListLeases(ctx); err != nil || len(ls) != 0 {
		t.Fatalf("ListLeases = %+v, %v; want no lease and no error", ls, err)
	}
	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000001", Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	if ls, err := s.ListLeases(ctx); err != nil || len(ls) != 1 || ls[0].LeaseKey != "shardId-000000000001" {
		t.Fatalf("ListLeases = %+v, %v; want the one lease", ls, err)
	}
	for _, item := range others {
		key := item["leaseKey"].(*types.AttributeValueMemberS).Value
		if _, err := s.GetLease(ctx, key); !errors.Is(err, lease.ErrLeaseNotFound) {
			t.Errorf("GetLease(%q) error = %v, want ErrLeaseNotFound", key, err)
		}
		if created, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: key}); err != nil || created {
			t.Errorf("CreateLeaseIfNotExists(%q) = %v, %v; want false, nil", key, created, err)
		}
		if _, err := s.TakeLease(ctx, key, "", 0, "ksp"); !errors.Is(err, lease.ErrLeaseNotFound) {
			t.Errorf("TakeLease(%q) error = %v, want ErrLeaseNotFound", key, err)
		}
		if _, err := s.UpdateLeaseMeta(ctx, key, lease.MetaUpdate{ChildShardIDs: []string{"c"}}); !errors.Is(err, lease.ErrLeaseNotFound) {
			t.Errorf("UpdateLeaseMeta(%q) error = %v, want ErrLeaseNotFound", key, err)
		}
		if err := s.DeleteLease(ctx, key); err != nil {
			t.Errorf("DeleteLease(%q) = %v, want nil (no lease)", key, err)
		}
		if got := rawGet(t, client, s.Table(), key); !reflect.DeepEqual(got, item) {
			t.Errorf("item %q changed:\n got  %#v\n want %#v", key, got, item)
		}
	}
}

// testCorruptItemLeftOut: one undecodable item does not hide the good leases.
func testCorruptItemLeftOut(t *testing.T, client *dynamodb.Client) {
	ctx := context.Background()
	s := newTable(t, client)
	mustTable(t, s)
	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000001", Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	bad := map[string]types.AttributeValue{"leaseKey": sAV("shardId-000000000002"), "leaseCounter": sAV("not a number")}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: bad}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListLeases(ctx)
	if !errors.Is(err, lease.ErrCorruptLease) || !strings.Contains(err.Error(), "1 items left out") {
		t.Fatalf("ListLeases error = %v, want ErrCorruptLease", err)
	}
	if len(got) != 1 || got[0].LeaseKey != "shardId-000000000001" {
		t.Fatalf("ListLeases = %+v, want the good lease", got)
	}
}

func testTableLikeKCL(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Table())})
	if err != nil {
		t.Fatal(err)
	}
	td := out.Table
	if len(td.KeySchema) != 1 || aws.ToString(td.KeySchema[0].AttributeName) != "leaseKey" || td.KeySchema[0].KeyType != types.KeyTypeHash {
		t.Fatalf("key schema = %+v, want leaseKey HASH", td.KeySchema)
	}
	checkOwnerIndex(t, td)
	if td.BillingModeSummary == nil || td.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("billing mode = %+v, want PAY_PER_REQUEST", td.BillingModeSummary)
	}
}

func sAV(v string) types.AttributeValue     { return &types.AttributeValueMemberS{Value: v} }
func nAV(v string) types.AttributeValue     { return &types.AttributeValueMemberN{Value: v} }
func ssAV(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }

// kclItems are leases as the Java KCL's DynamoDBLeaseSerializer writes them.
func kclItems() map[string]map[string]types.AttributeValue {
	return map[string]map[string]types.AttributeValue{
		// A lease being processed, with a KPL sub-sequence checkpoint, a
		// prepared checkpoint, KCL 3.x attributes and ones ksp does not know.
		"shardId-000000000003": {
			"leaseKey":                           sAV("shardId-000000000003"),
			"leaseOwner":                         sAV("java-worker-1"),
			"leaseCounter":                       nAV("1234"),
			"ownerSwitchesSinceCheckpoint":       nAV("2"),
			"checkpoint":                         sAV("49590338271490256608559692538361571095921575989136588898"),
			"checkpointSubSequenceNumber":        nAV("17"),
			"pendingCheckpoint":                  sAV("49590338271490256608559692540925702759324208523137515618"),
			"pendingCheckpointSubSequenceNumber": nAV("0"),
			"pendingCheckpointState":             &types.AttributeValueMemberB{Value: []byte{0xca, 0xfe}},
			"parentShardId":                      ssAV("shardId-000000000000"),
			"startingHashKey":                    sAV("0"),
			"endingHashKey":                      sAV("170141183460469231731687303715884105727"),
			"throughputKBps":                     nAV("12.5"),
			"entityType":                         sAV("LEASE"),
			"someFutureAttribute":                &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"x": nAV("1")}},
		},
		// A finished parent: SHARD_END, children known, no owner.
		"shardId-000000000000": {
			"leaseKey":                     sAV("shardId-000000000000"),
			"leaseCounter":                 nAV("99"),
			"ownerSwitchesSinceCheckpoint": nAV("0"),
			"checkpoint":                   sAV("SHARD_END"),
			"checkpointSubSequenceNumber":  nAV("0"),
			"childShardIds":                ssAV("shardId-000000000003", "shardId-000000000002"),
		},
		// A merge child waiting for two parents, mid hand-off.
		"shardId-000000000009": {
			"leaseKey":                     sAV("shardId-000000000009"),
			"leaseOwner":                   sAV("java-worker-2"),
			"checkpointOwner":              sAV("java-worker-1"),
			"leaseCounter":                 nAV("0"),
			"ownerSwitchesSinceCheckpoint": nAV("0"),
			"checkpoint":                   sAV("TRIM_HORIZON"),
			"checkpointSubSequenceNumber":  nAV("0"),
			"parentShardId":                ssAV("shardId-000000000007", "shardId-000000000008"),
		},
	}
}

func kclLeases() []lease.Lease {
	return []lease.Lease{
		{
			LeaseKey:       "shardId-000000000000",
			LeaseCounter:   99,
			Checkpoint:     lease.ShardEnd,
			ChildShardIDs:  []string{"shardId-000000000002", "shardId-000000000003"},
			ParentShardIDs: nil,
		},
		{
			LeaseKey:                     "shardId-000000000003",
			LeaseOwner:                   "java-worker-1",
			LeaseCounter:                 1234,
			OwnerSwitchesSinceCheckpoint: 2,
			Checkpoint:                   lease.Checkpoint{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 17},
			PendingCheckpoint:            lease.Checkpoint{SequenceNumber: "49590338271490256608559692540925702759324208523137515618"},
			PendingCheckpointState:       []byte{0xca, 0xfe},
			ParentShardIDs:               []string{"shardId-000000000000"},
			StartingHashKey:              "0",
			EndingHashKey:                "170141183460469231731687303715884105727",
			ThroughputKBps:               12.5,
		},
		{
			LeaseKey:        "shardId-000000000009",
			LeaseOwner:      "java-worker-2",
			CheckpointOwner: "java-worker-1",
			Checkpoint:      lease.TrimHorizon,
			ParentShardIDs:  []string{"shardId-000000000007", "shardId-000000000008"},
		},
	}
}

func rawGet(t *testing.T, client *dynamodb.Client, table, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"leaseKey": sAV(key)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func testReadsKCLItems(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	for _, item := range kclItems() {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := kclLeases()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListLeases of KCL items:\n got  %+v\n want %+v", got, want)
	}
	for _, w := range want {
		l, err := s.GetLease(ctx, w.LeaseKey)
		if err != nil || !reflect.DeepEqual(l, w) {
			t.Fatalf("GetLease(%q) = %+v, %v\n want %+v", w.LeaseKey, l, err, w)
		}
	}

	// ksp works the KCL's lease; what it does not model survives.
	const key = "shardId-000000000003"
	l, err := s.RenewLease(ctx, key, "java-worker-1", 1234)
	if err != nil {
		t.Fatal(err)
	}
	l, err = s.UpdateCheckpoint(ctx, key, "java-worker-1", l.LeaseCounter, lease.Checkpoint{SequenceNumber: "49590338271490256608559692540925702759324208523137515618", SubSequenceNumber: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeLease(ctx, key, "java-worker-1", l.LeaseCounter, "ksp-worker"); err != nil {
		t.Fatal(err)
	}
	item := rawGet(t, client, s.Table(), key)
	if v, ok := item["entityType"].(*types.AttributeValueMemberS); !ok || v.Value != "LEASE" {
		t.Fatalf("entityType = %#v after ksp's writes, want S LEASE", item["entityType"])
	}
	if _, ok := item["someFutureAttribute"].(*types.AttributeValueMemberM); !ok {
		t.Fatalf("someFutureAttribute = %#v after ksp's writes, want the map kept", item["someFutureAttribute"])
	}
	checkTypes(t, item)
	wantN(t, item, "leaseCounter", "1237")
	wantN(t, item, "ownerSwitchesSinceCheckpoint", "1")
	wantN(t, item, "checkpointSubSequenceNumber", "5")
	for _, gone := range []string{"pendingCheckpoint", "pendingCheckpointSubSequenceNumber", "pendingCheckpointState"} {
		if _, ok := item[gone]; ok {
			t.Fatalf("%s still present after a checkpoint: %#v", gone, item[gone])
		}
	}

	// A hand-off started by a Java KCL 3.x leader completes through ksp.
	if _, err := s.EvictLease(ctx, "shardId-000000000009", "java-worker-1"); err != nil {
		t.Fatal(err)
	}
	item = rawGet(t, client, s.Table(), "shardId-000000000009")
	if _, ok := item["checkpointOwner"]; ok {
		t.Fatalf("checkpointOwner still present after the holder evicted")
	}
	if v, ok := item["leaseOwner"].(*types.AttributeValueMemberS); !ok || v.Value != "java-worker-2" {
		t.Fatalf("leaseOwner = %#v, want java-worker-2", item["leaseOwner"])
	}
}

func wantN(t *testing.T, item map[string]types.AttributeValue, name, want string) {
	t.Helper()
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok || v.Value != want {
		t.Fatalf("%s = %#v, want N %s", name, item[name], want)
	}
}

// kclTypes are the DynamoDB types the KCL reads each attribute as.
var kclTypes = map[string]string{
	"leaseKey": "S", "leaseOwner": "S", "leaseCounter": "N", "ownerSwitchesSinceCheckpoint": "N",
	"checkpoint": "S", "checkpointSubSequenceNumber": "N", "pendingCheckpoint": "S",
	"pendingCheckpointSubSequenceNumber": "N", "pendingCheckpointState": "B", "parentShardId": "SS",
	"childShardIds": "SS", "startingHashKey": "S", "endingHashKey": "S", "throughputKBps": "N",
	"checkpointOwner": "S", "entityType": "S",
}

func checkTypes(t *testing.T, item map[string]types.AttributeValue) {
	t.Helper()
	for name, v := range item {
		want, known := kclTypes[name]
		if known && dynamoattr.TypeName(v) != want {
			t.Errorf("attribute %s has type %s, want %s", name, dynamoattr.TypeName(v), want)
		}
	}
}

func testWritesKCLItems(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	full := leasetest.FullLease("shardId-000000000005")
	if _, err := s.CreateLeaseIfNotExists(ctx, full); err != nil {
		t.Fatal(err)
	}
	item := rawGet(t, client, s.Table(), full.LeaseKey)
	var names []string
	for name := range item {
		names = append(names, name)
	}
	sort.Strings(names)
	var all []string
	for name := range kclTypes {
		all = append(all, name)
	}
	sort.Strings(all)
	if !reflect.DeepEqual(names, all) {
		t.Fatalf("attributes written = %v\n want every KCL attribute %v", names, all)
	}
	checkTypes(t, item)
	wantN(t, item, "leaseCounter", "42")
	wantN(t, item, "checkpointSubSequenceNumber", "7")
	wantN(t, item, "throughputKBps", "123.25")
	if v := item["parentShardId"].(*types.AttributeValueMemberSS).Value; len(v) != 2 {
		t.Fatalf("parentShardId = %v", v)
	}
	if v := item["pendingCheckpointState"].(*types.AttributeValueMemberB).Value; !bytes.Equal(v, full.PendingCheckpointState) {
		t.Fatalf("pendingCheckpointState = %x", v)
	}

	// Every write keeps the types.
	key := full.LeaseKey
	l, err := s.TakeLease(ctx, key, full.LeaseOwner, full.LeaseCounter, "w2")
	if err == nil {
		l, err = s.PrepareCheckpoint(ctx, key, "w2", l.LeaseCounter, lease.Checkpoint{SequenceNumber: "7", SubSequenceNumber: 1}, []byte("s"))
	}
	if err == nil {
		l, err = s.UpdateLeaseMeta(ctx, key, lease.MetaUpdate{ChildShardIDs: []string{"c1", "c2"}, StartingHashKey: "1", EndingHashKey: "2"})
	}
	if err == nil {
		l, err = s.RenewLease(ctx, key, "w2", l.LeaseCounter)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkTypes(t, rawGet(t, client, s.Table(), key))
	if _, err := s.UpdateCheckpoint(ctx, key, "w2", l.LeaseCounter, lease.ShardEnd); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EvictLease(ctx, key, "w2"); err != nil {
		t.Fatal(err)
	}
	item = rawGet(t, client, s.Table(), key)
	checkTypes(t, item)
	if v := item["checkpoint"].(*types.AttributeValueMemberS).Value; v != "SHARD_END" {
		t.Fatalf("checkpoint = %q, want SHARD_END", v)
	}
	if _, ok := item["leaseOwner"]; ok {
		t.Fatalf("leaseOwner present after evict")
	}
}

// dropFirstUpdate lets one UpdateItem reach the server, then tells the SDK
// it failed with a retryable error, as a lost response does.
type dropFirstUpdate struct {
	armed atomic.Bool
}

func (d *dropFirstUpdate) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".UpdateItem") || !d.armed.CompareAndSwap(true, false) {
		return resp, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	body := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}`
	return &http.Response{
		StatusCode: 500, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

func testRetriedWrite(t *testing.T, url string) {
	faulty := &dropFirstUpdate{}
	s := newTable(t, newClient(url, faulty))
	mustTable(t, s)
	const key = "shardId-000000000001"
	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: key, LeaseOwner: "w1", LeaseCounter: 5, Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	faulty.armed.Store(true)
	l, err := s.RenewLease(ctx, key, "w1", 5)
	if err != nil {
		t.Fatalf("renew whose first attempt succeeded: %v", err)
	}
	if faulty.armed.Load() {
		t.Fatal("the fault was not injected")
	}
	if l.LeaseCounter != 6 {
		t.Fatalf("counter = %d, want 6 (applied once)", l.LeaseCounter)
	}
	faulty.armed.Store(true)
	l, err = s.TakeLease(ctx, key, "w1", 6, "w2")
	if err != nil || l.LeaseOwner != "w2" || l.LeaseCounter != 7 || l.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("take whose first attempt succeeded = %+v, %v", l, err)
	}
	// Without a retry a stale write still fails.
	if _, err := s.RenewLease(ctx, key, "w2", 6); !errors.Is(err, lease.ErrConditionFailed) {
		t.Fatalf("stale renew: err = %v, want ErrConditionFailed", err)
	}
}

func testPaging(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	// Items near the 1 MB scan page size force more than one page.
	state := bytes.Repeat([]byte{7}, 300<<10)
	for i := range 8 {
		l := lease.Lease{LeaseKey: fmt.Sprintf("shardId-%012d", i), Checkpoint: lease.TrimHorizon, PendingCheckpoint: lease.Latest, PendingCheckpointState: state}
		if _, err := s.CreateLeaseIfNotExists(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.ListLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 8 {
		t.Fatalf("ListLeases returned %d leases, want 8", len(ls))
	}
	for i, l := range ls {
		if l.LeaseKey != fmt.Sprintf("shardId-%012d", i) {
			t.Fatalf("lease %d is %q; want sorted keys", i, l.LeaseKey)
		}
	}
}
