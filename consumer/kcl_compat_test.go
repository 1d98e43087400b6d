package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/aggregation"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/dynamoattr"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

func sAV(v string) ddb.AttributeValue     { return &ddb.AttributeValueMemberS{Value: v} }
func nAV(v string) ddb.AttributeValue     { return &ddb.AttributeValueMemberN{Value: v} }
func ssAV(v ...string) ddb.AttributeValue { return &ddb.AttributeValueMemberSS{Value: v} }

// putOne puts records to a shard (by explicit hash key) and returns their
// sequence numbers.
func putTo(t *testing.T, c *kinesis.Client, stream, ehk string, entries ...types.PutRecordsRequestEntry) []string {
	t.Helper()
	for i := range entries {
		if entries[i].ExplicitHashKey == nil {
			entries[i].ExplicitHashKey = aws.String(ehk)
		}
	}
	out, err := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v %+v", err, out)
	}
	var seqs []string
	for _, r := range out.Records {
		seqs = append(seqs, aws.ToString(r.SequenceNumber))
	}
	return seqs
}

func plain(key string, n int) []types.PutRecordsRequestEntry {
	var out []types.PutRecordsRequestEntry
	for i := range n {
		out = append(out, types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: fmt.Appendf(nil, "%s-%d", key, i)})
	}
	return out
}

// A lease table written exactly as the Java KCL writes it (a finished parent
// at SHARD_END, a child with a checkpoint held by a dead Java worker, a
// child checkpointed in the middle of a KPL aggregate) is taken over: ksp
// resumes at those checkpoints, and the items it writes keep the KCL names
// and types.
func TestKCLLeaseTableTakeOver(t *testing.T) {
	const table = "kcl-app"
	ddbClient, store := dynaliteTable(t, table)

	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, "kcl", 1)
	putTo(t, client, "kcl", "1", plain("parent", 5)...)
	const mid = "170141183460469231731687303715884105728" // 2^127
	if _, err := client.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("kcl"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(bg, client, "kcl"); err != nil {
		t.Fatal(err)
	}
	// Child 1 ([0, 2^127-1]): 10 records, the KCL checkpointed the 4th.
	seq1 := putTo(t, client, "kcl", "1", plain("one", 10)...)
	// Child 2 ([2^127, max]): an aggregate of 5 checkpointed at sub 2, then 3 plain.
	agg, _ := aggregation.NewAggregator()
	for i := range 5 {
		if err := agg.Add("two", mid, fmt.Appendf(nil, "two-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ct := agg.Build(nil)
	seq2 := putTo(t, client, "kcl", mid, types.PutRecordsRequestEntry{PartitionKey: aws.String(ct.PartitionKey), ExplicitHashKey: aws.String(ct.ExplicitHashKey), Data: ct.Data})
	more := plain("two", 8)[5:]
	putTo(t, client, "kcl", mid, more...)

	shards := servertest.Shards(t, client, "kcl")
	rng := func(id string) (string, string) {
		for _, s := range shards {
			if aws.ToString(s.ShardId) == id {
				return aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey)
			}
		}
		t.Fatalf("no shard %s", id)
		return "", ""
	}
	s1, e1 := rng("shardId-000000000001")
	s2, e2 := rng("shardId-000000000002")
	items := []map[string]ddb.AttributeValue{
		{
			"leaseKey": sAV("shardId-000000000000"), "leaseCounter": nAV("57"), "ownerSwitchesSinceCheckpoint": nAV("0"),
			"checkpoint": sAV("SHARD_END"), "checkpointSubSequenceNumber": nAV("0"),
			"childShardIds":   ssAV("shardId-000000000001", "shardId-000000000002"),
			"startingHashKey": sAV("0"), "endingHashKey": sAV("340282366920938463463374607431768211455"),
		},
		{
			"leaseKey": sAV("shardId-000000000001"), "leaseOwner": sAV("java-worker-1"), "leaseCounter": nAV("1234"),
			"ownerSwitchesSinceCheckpoint": nAV("1"), "checkpoint": sAV(seq1[3]), "checkpointSubSequenceNumber": nAV("0"),
			"parentShardId": ssAV("shardId-000000000000"), "startingHashKey": sAV(s1), "endingHashKey": sAV(e1),
			"throughputKBps": nAV("3.5"), "entityType": sAV("LEASE"),
		},
		{
			"leaseKey": sAV("shardId-000000000002"), "leaseOwner": sAV("java-worker-2"), "leaseCounter": nAV("8"),
			"ownerSwitchesSinceCheckpoint": nAV("0"), "checkpoint": sAV(seq2[0]), "checkpointSubSequenceNumber": nAV("2"),
			"parentShardId": ssAV("shardId-000000000000"), "startingHashKey": sAV(s2), "endingHashKey": sAV(e2),
		},
	}
	for _, it := range items {
		if _, err := ddbClient.PutItem(bg, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}

	sk := newSink()
	// A 3 s failover (not fast()'s 600 ms): dynalite is a node process, and
	// on a loaded machine a renewal stalled past 600 ms loses the lease, or
	// the eviction at shutdown outlasts its 1 s store timeout (a failover
	// time / 2, at least 1 s): either way the lease is not released at
	// shutdown, which this test checks it is.
	r := start(t, append(fast("kcl", client, store, "ksp-worker"), consumer.WithHandler(sk.handler("ksp")), consumer.WithFailoverTime(3*time.Second))...)
	want := map[string]bool{"one-4": true, "one-5": true, "one-6": true, "one-7": true, "one-8": true, "one-9": true,
		"two-3": true, "two-4": true, "two-5": true, "two-6": true, "two-7": true}
	waitFor(t, 20*time.Second, "the records after the KCL checkpoints", func() bool { return sk.unique() >= len(want) })
	time.Sleep(200 * time.Millisecond) // anything extra would show up now
	r.stop(t)
	sk.mu.Lock()
	for k, data := range sk.byKey {
		for _, d := range data {
			if !want[d] {
				t.Errorf("key %s: record %s was before the KCL checkpoint", k, d)
			}
		}
	}
	if sk.total != len(want) {
		t.Errorf("processed %d records, want %d", sk.total, len(want))
	}
	sk.mu.Unlock()

	// Items ksp wrote: KCL names and types.
	for _, key := range []string{"shardId-000000000001", "shardId-000000000002"} {
		out, err := ddbClient.GetItem(bg, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]ddb.AttributeValue{"leaseKey": sAV(key)}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		it := out.Item
		for name, want := range map[string]string{"leaseKey": "S", "leaseCounter": "N", "ownerSwitchesSinceCheckpoint": "N",
			"checkpoint": "S", "checkpointSubSequenceNumber": "N", "parentShardId": "SS", "startingHashKey": "S", "endingHashKey": "S"} {
			if got := dynamoattr.TypeName(it[name]); got != want {
				t.Errorf("%s: attribute %s has type %q, want %q", key, name, got, want)
			}
		}
		if _, ok := it["leaseOwner"]; ok {
			t.Errorf("%s: leaseOwner still set after a graceful shutdown", key)
		}
		if key == "shardId-000000000002" {
			if cp := it["checkpoint"].(*ddb.AttributeValueMemberS).Value; cp == seq2[0] {
				t.Errorf("%s: checkpoint did not move past the aggregate", key)
			}
			if v := it["checkpointSubSequenceNumber"].(*ddb.AttributeValueMemberN).Value; v != "0" {
				t.Errorf("%s: checkpointSubSequenceNumber %s, want 0 after plain records", key, v)
			}
		}
		if key == "shardId-000000000001" {
			if it["entityType"] == nil || it["throughputKBps"] == nil {
				t.Errorf("%s: KCL attributes ksp does not model were dropped: %v", key, it)
			}
		}
	}
}

// dynaliteTable starts dynalite and creates a lease table in it.
func dynaliteTable(t *testing.T, table string) (*dynamodb.Client, *dynamo.Store) {
	t.Helper()
	return dynaliteTableVia(t, table, nil)
}

// dynaliteTableVia is dynaliteTable with the client sending its requests
// through hc (nil: the SDK's default).
func dynaliteTableVia(t *testing.T, table string, hc aws.HTTPClient, opts ...func(*dynamodb.Options)) (*dynamodb.Client, *dynamo.Store) {
	t.Helper()
	p := peers.StartT(t, peers.Dynalite, peers.Options{})
	client := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(p.URL), HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}, opts...)
	store, err := dynamo.New(client, table, dynamo.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateTableIfNotExists(bg); err != nil {
		t.Fatal(err)
	}
	if err := store.WaitUntilTableExists(bg); err != nil {
		t.Fatal(err)
	}
	return client, store
}
