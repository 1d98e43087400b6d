package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/kcltable"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// simLeader is a KCL 3.x leader written for the test, following the KCL
// 3.5.1 sources (paths under amazon-kinesis-client/src/main/java/
// software/amazon/kinesis/): it holds the lock item "Leader" and heartbeats
// it as the DynamoDB lock client does (a conditional write of a new
// recordVersionNumber), finds the active workers as
// coordinator/assignment/MigrationAwareLAMDataManager.java and
// LeaseAssignmentManager.java do, and assigns a lease with the conditions
// and updates of leases/dynamodb/DynamoDBLeaseRefresher.java assignLease.
type simLeader struct {
	client *dynamodb.Client
	table  string
	// reportEvery is the fleet's workerMetricsReporterFreqInMillis: a
	// worker whose item is older than twice it is not active
	// (DEFAULT_NO_OF_SKIP_STAT_FOR_DEAD_WORKER_THRESHOLD = 2).
	reportEvery time.Duration
	rvn         int
}

func (l *simLeader) put(t *testing.T, item map[string]ddb.AttributeValue, cond string, vals map[string]ddb.AttributeValue) {
	t.Helper()
	in := &dynamodb.PutItemInput{TableName: aws.String(l.table), Item: item}
	if cond != "" {
		in.ConditionExpression, in.ExpressionAttributeValues = aws.String(cond), vals
	}
	if _, err := l.client.PutItem(bg, in); err != nil {
		t.Errorf("leader lock write: %v", err)
	}
}

// lock takes the leader lock, with the given lease duration.
func (l *simLeader) lock(t *testing.T, d time.Duration) {
	l.put(t, kcltable.LeaderLock("java-leader", d.Milliseconds(), "rvn-0"), "attribute_not_exists(leaseKey)", nil)
}

// heartbeat changes the lock's recordVersionNumber every interval, on the
// condition that it is still the one it wrote, until stop is called.
func (l *simLeader) heartbeat(t *testing.T, d, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			old := "rvn-" + strconv.Itoa(l.rvn)
			l.rvn++
			l.put(t, kcltable.LeaderLock("java-leader", d.Milliseconds(), "rvn-"+strconv.Itoa(l.rvn)),
				"recordVersionNumber = :old", map[string]ddb.AttributeValue{":old": sAV(old)})
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// activeWorkers returns the workers a leader may assign leases to: a scan
// filtered on entityType = WORKER_METRIC_STATS
// (worker/metricstats/delegate/WorkerMetricStatsDAODelegate.java
// getAllWorkerMetricStats), kept when valid (WorkerMetricStats
// isValidWorkerMetric: lut set; every metric in sts has an operating range
// whose first value is not 0; or no metric at all, the default worker
// metric), not expired (isExpired: lut at most 2 × reportEvery old) and not
// failing (isAnyWorkerMetricFailing: no list ends in -1).
func (l *simLeader) activeWorkers(t *testing.T) []string {
	t.Helper()
	out, err := l.client.Scan(bg, &dynamodb.ScanInput{
		TableName: aws.String(l.table), FilterExpression: aws.String("#et = :et"),
		ExpressionAttributeNames:  map[string]string{"#et": "entityType"},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":et": sAV(kcltable.EntityWorkerMetric)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range out.Items {
		lut, ok := it["lut"].(*ddb.AttributeValueMemberN)
		if !ok {
			continue
		}
		secs, err := strconv.ParseInt(lut.Value, 10, 64)
		if err != nil || time.Since(time.Unix(secs, 0)) > 2*l.reportEvery {
			continue
		}
		sts, _ := it["sts"].(*ddb.AttributeValueMemberM)
		opr, _ := it["opr"].(*ddb.AttributeValueMemberM)
		if sts == nil || opr == nil {
			continue
		}
		valid := true
		for name, v := range sts.Value {
			vals, _ := v.(*ddb.AttributeValueMemberL)
			rng, _ := opr.Value[name].(*ddb.AttributeValueMemberL)
			if vals == nil || len(vals.Value) == 0 || rng == nil || len(rng.Value) == 0 {
				valid = false
				break
			}
			if top, _ := rng.Value[0].(*ddb.AttributeValueMemberN); top == nil || top.Value == "0" {
				valid = false
			}
			if last, _ := vals.Value[len(vals.Value)-1].(*ddb.AttributeValueMemberN); last == nil || last.Value == "-1" {
				valid = false
			}
		}
		if valid {
			ids = append(ids, it["leaseKey"].(*ddb.AttributeValueMemberS).Value)
		}
	}
	slices.Sort(ids)
	return ids
}

// assign is assignLease: expected leaseOwner as read (absent here: the
// lease is unassigned) and the lease exists; leaseOwner = to, leaseCounter
// + 1, checkpointOwner removed (DynamoDBLeaseSerializer
// getDynamoAssignLeaseUpdate, getDynamoLeaseOwnerExpectation).
func (l *simLeader) assign(t *testing.T, key, to string) {
	t.Helper()
	_, err := l.client.UpdateItem(bg, &dynamodb.UpdateItemInput{
		TableName: aws.String(l.table), Key: map[string]ddb.AttributeValue{"leaseKey": sAV(key)},
		ConditionExpression:       aws.String("attribute_not_exists(leaseOwner) AND attribute_exists(leaseKey)"),
		UpdateExpression:          aws.String("SET leaseOwner = :to ADD leaseCounter :one REMOVE checkpointOwner"),
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":to": sAV(to), ":one": nAV("1")},
	})
	if err != nil {
		t.Fatalf("assigning %s to %s: %v", key, to, err)
	}
}

// tookAll reports whether h saw every one of shardIDs taken.
func tookAll(h *takenHook, shardIDs ...string) bool {
	got := h.list()
	for _, id := range shardIDs {
		if !slices.Contains(got, id) {
			return false
		}
	}
	return true
}

// A ksp worker in a KCL 3.x fleet: it publishes its metrics item as a KCL
// worker does, a (simulated) KCL 3.x leader counts it as active and assigns
// it leases, and it processes them; while the leader's lock is alive it
// takes no lease the leader did not assign, and a second ksp worker asks
// nobody for leases; once the leader's lock goes stale, the ksp workers
// balance on their own.
func TestKCL3LeaderAssignsToKSPWorker(t *testing.T) {
	t.Parallel()
	const table, stream = "kcl3-fleet-app", "kcl3fleet"
	const lockTTL = 3 * time.Second // 15 heartbeats: a slow machine does not make the leader look dead
	queries := &indexQueries{}
	ddbClient, store := dynaliteTableVia(t, table, queries)
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, stream, 4)
	prod := newProducer(client, stream, 24)
	for range 3 {
		prod.round(t)
	}

	leader := &simLeader{client: ddbClient, table: table, reportEvery: time.Second}
	leader.lock(t, lockTTL)
	stopHeartbeat := leader.heartbeat(t, lockTTL, 200*time.Millisecond)
	defer func() {
		if stopHeartbeat != nil {
			stopHeartbeat()
		}
	}()

	sk := newSink()
	hook1, rounds1 := &takenHook{}, &roundCounter{}
	opts := func(id string, h *takenHook, r *roundCounter) []consumer.Option {
		return append(fast(stream, client, store, id), consumer.WithHandler(sk.handler(id)),
			consumer.WithWorkerMetrics(300*time.Millisecond), consumer.WithHooks(h, r))
	}
	start(t, opts("ksp-1", hook1, rounds1)...)

	waitFor(t, 10*time.Second, "ksp-1 active for the leader", func() bool {
		return slices.Equal(leader.activeWorkers(t), []string{"ksp-1"})
	})
	checkMetricsItem(t, ddbClient, table, "ksp-1")

	var keys []string
	waitFor(t, 10*time.Second, "the 4 leases created by ksp-1's shard sync", func() bool {
		ls, err := store.ListLeases(bg)
		if err != nil {
			t.Fatal(err)
		}
		keys = keys[:0]
		for _, l := range ls {
			keys = append(keys, l.LeaseKey)
		}
		return len(keys) == 4
	})
	// The leader assigns two leases; ksp-1 takes those and only those.
	leader.assign(t, keys[0], "ksp-1")
	leader.assign(t, keys[1], "ksp-1")
	waitFor(t, 10*time.Second, "ksp-1 taking the 2 leases assigned to it", func() bool { return tookAll(hook1, keys[0], keys[1]) })
	if queries.n.Load() == 0 {
		t.Fatal("ksp-1 found its assigned leases without the LeaseOwnerToLeaseKeyIndex")
	}
	for range 12 { // two failover times of ksp-1's rounds
		rounds1.wait(t, 1)
		if o := owners(t, store); o[""] != 2 || o["ksp-1"] != 2 {
			t.Fatalf("owners = %v: ksp-1 took a lease the leader did not assign", o)
		}
	}
	leader.assign(t, keys[2], "ksp-1")
	leader.assign(t, keys[3], "ksp-1")
	waitFor(t, 10*time.Second, "every record, by ksp-1", func() bool { return sk.unique() == prod.total() })

	// A second ksp worker leaves balancing to the leader: nothing moves.
	hook2, rounds2 := &takenHook{}, &roundCounter{}
	start(t, opts("ksp-2", hook2, rounds2)...)
	waitFor(t, 10*time.Second, "ksp-2 active for the leader", func() bool {
		return slices.Equal(leader.activeWorkers(t), []string{"ksp-1", "ksp-2"})
	})
	for range 12 { // two failover times of ksp-2's rounds
		rounds2.wait(t, 1)
		ls, err := store.ListLeases(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.LeaseOwner != "ksp-1" || l.CheckpointOwner != "" {
				t.Fatalf("lease %s: owner %q, checkpointOwner %q while the leader lives; want ksp-1 and none", l.LeaseKey, l.LeaseOwner, l.CheckpointOwner)
			}
		}
	}

	// The leader dies: its lock goes stale, and the ksp workers balance.
	stopHeartbeat()
	stopHeartbeat = nil
	waitFor(t, 20*time.Second, "ksp-1 and ksp-2 at 2 leases each", func() bool {
		o := owners(t, store)
		return o["ksp-1"] == 2 && o["ksp-2"] == 2
	})
	for range 3 {
		prod.round(t)
	}
	waitFor(t, 10*time.Second, "every record", func() bool { return sk.unique() == prod.total() })
	if d := sk.duplicates(); d != 0 {
		t.Errorf("%d records replayed; the hand-offs were graceful", d)
	}
}

// checkMetricsItem checks a ksp worker's metrics item attribute by
// attribute against the KCL's (worker/metricstats/WorkerMetricStats.java,
// LeaseTableWorkerMetricStats; WorkerMetricStatsReporter.java): entityType
// S WORKER_METRIC_STATS, lut N epoch seconds, sts M {"C": L of N in
// 0…100, at most 10}, opr M {"C": L [N 100]}, sup N 1, slu N = lut.
func checkMetricsItem(t *testing.T, client *dynamodb.Client, table, worker string) {
	t.Helper()
	out, err := client.GetItem(bg, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]ddb.AttributeValue{"leaseKey": sAV(worker)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	it := out.Item
	if !reflect.DeepEqual(it["entityType"], sAV(kcltable.EntityWorkerMetric)) {
		t.Errorf("entityType = %v", it["entityType"])
	}
	lut, ok := it["lut"].(*ddb.AttributeValueMemberN)
	if !ok {
		t.Fatalf("lut = %#v, want N", it["lut"])
	}
	if secs, err := strconv.ParseInt(lut.Value, 10, 64); err != nil || time.Since(time.Unix(secs, 0)).Abs() > time.Minute {
		t.Errorf("lut = %s, want the epoch seconds of about now", lut.Value)
	}
	if slu, ok := it["slu"].(*ddb.AttributeValueMemberN); !ok || slu.Value != lut.Value {
		t.Errorf("slu = %#v, want N %s", it["slu"], lut.Value)
	}
	if sup, ok := it["sup"].(*ddb.AttributeValueMemberN); !ok || sup.Value != "1" {
		t.Errorf("sup = %#v, want N 1", it["sup"])
	}
	sts, _ := it["sts"].(*ddb.AttributeValueMemberM)
	if sts == nil || len(sts.Value) != 1 {
		t.Fatalf("sts = %#v, want M with C", it["sts"])
	}
	cpu, _ := sts.Value["C"].(*ddb.AttributeValueMemberL)
	if cpu == nil || len(cpu.Value) == 0 || len(cpu.Value) > 10 {
		t.Fatalf("sts.C = %#v, want L of 1…10 N", sts.Value["C"])
	}
	for _, v := range cpu.Value {
		n, ok := v.(*ddb.AttributeValueMemberN)
		if !ok {
			t.Fatalf("sts.C value %#v, want N", v)
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f < 0 || f > 100 {
			t.Errorf("sts.C value %#v, want N in 0…100", v)
		}
	}
	want := &ddb.AttributeValueMemberM{Value: map[string]ddb.AttributeValue{"C": &ddb.AttributeValueMemberL{Value: []ddb.AttributeValue{nAV("100")}}}}
	if !reflect.DeepEqual(it["opr"], ddb.AttributeValue(want)) {
		t.Errorf("opr = %#v, want M {C: [100]}", it["opr"])
	}
}

// WithWorkerMetrics needs a store that can hold the KCL's fleet items, and a
// sane interval.
func TestWorkerMetricsBadOptions(t *testing.T) {
	t.Parallel()
	h := consumer.WithHandler(func(context.Context, []consumer.Record) error { return nil })
	base := []consumer.Option{consumer.WithKinesis(pollOnly{}), consumer.WithStream("a"), h}
	// New does not call DynamoDB: a client that points nowhere will do.
	store, err := dynamo.New(dynamodb.New(dynamodb.Options{Region: "us-east-1"}), "kcl3-fleet-options")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []consumer.Option
		want string
	}{
		{"MemoryStore", []consumer.Option{consumer.WithLeaseStore(memory.NewWithTable()), consumer.WithWorkerMetrics(0)}, "needs a lease store that implements lease.FleetStore"},
		{"TinyInterval", []consumer.Option{consumer.WithLeaseStore(store), consumer.WithWorkerMetrics(time.Millisecond)}, "worker metrics interval 1ms is below 10ms"},
	} {
		_, err := consumer.New(append(base, tc.opts...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := consumer.New(append(base, consumer.WithLeaseStore(store), consumer.WithWorkerMetrics(0))...); err != nil {
		t.Errorf("New with a DynamoDB store: %v", err)
	}
}

// A worker without WithWorkerMetrics meeting a live KCL 3.x fleet's table
// (the leader's lock held, a worker's metrics fresh) stops before taking
// anything, with an error naming the leader and the live workers. The
// same table whose fleet stopped reporting is taken over.
func TestLiveKCL3FleetTableRefusedBeforeTaking(t *testing.T) {
	t.Parallel()
	const table, stream = "kcl3-live-app", "kcl3live"
	ddbClient, store := dynaliteTable(t, table)
	_, client := startServer(t, server.Options{})
	servertest.CreateStream(t, client, stream, 2)
	for _, sh := range servertest.Shards(t, client, stream) {
		if _, err := store.CreateLeaseIfNotExists(bg, lease.Lease{LeaseKey: aws.ToString(sh.ShardId), Checkpoint: lease.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(item map[string]ddb.AttributeValue) {
		t.Helper()
		if _, err := ddbClient.PutItem(bg, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	put(kcltable.LeaderLock("java-leader", 10000, "rvn-0"))
	put(kcltable.WorkerMetrics("java-1", time.Now().Unix(), 20))
	put(kcltable.WorkerMetrics("java-gone", time.Now().Add(-time.Hour).Unix(), 20))

	opts := append(fast(stream, client, store, "ksp-1"), consumer.WithHandler(newSink().handler("ksp-1")))
	c, err := consumer.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var fe *consumer.FleetTableError
	if !errors.Is(err, consumer.ErrFleetTable) || !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want a *FleetTableError matching ErrFleetTable", err)
	}
	if fe.Leader != "java-leader" || !slices.Equal(fe.Workers, []string{"java-1"}) || fe.Table != "the lease table" {
		t.Errorf("FleetTableError = %+v, want leader java-leader, live workers [java-1], in the lease table", fe)
	}
	if o := owners(t, store); o[""] != 2 {
		t.Fatalf("owners = %v: a lease was taken", o)
	}

	// The fleet stops reporting: its table is taken over.
	put(kcltable.WorkerMetrics("java-1", time.Now().Add(-time.Hour).Unix(), 20))
	start(t, opts...)
	waitFor(t, 20*time.Second, "ksp-1 taking the gone fleet's 2 leases", func() bool { return owners(t, store)["ksp-1"] == 2 })
}

// failLeaderReads fails every read of the leader lock item, as a timed-out
// or refused GetItem would; check runs before the n-th refusal returns, so
// it sees what the worker did with the reads before.
type failLeaderReads struct {
	failed atomic.Int64
	check  func(n int64)
}

func (f *failLeaderReads) Do(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".GetItem") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if bytes.Contains(body, []byte(`"Leader"`)) {
			f.check(f.failed.Add(1))
			return nil, errors.New("leader lock read refused by the test")
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return http.DefaultClient.Do(req)
}

// A worker of a KCL 3.x fleet that cannot read the leader lock yet takes
// only what is assigned to it: a failed first read (a timeout on a busy
// table) must not make it balance on its own against a leader it has not
// seen. A lock it can never read does not stop it for good: after
// maxUnreadLock (10) failed reads it balances on its own.
func TestFleetWorkerTakesNothingBeforeReadingTheLock(t *testing.T) {
	t.Parallel()
	const table, stream = "kcl3-unread-lock", "unreadlock"
	var store *dynamo.Store
	reads := &failLeaderReads{check: func(n int64) {
		if n < 2 || n > 9 { // the first read may come before the leases exist
			return
		}
		ls, err := store.ListLeases(bg)
		if err != nil {
			t.Errorf("listing leases: %v", err)
			return
		}
		for _, l := range ls {
			if l.LeaseOwner != "" {
				t.Errorf("after %d failed reads of the leader lock, lease %s is owned by %q: the worker balanced against a leader it has not seen", n-1, l.LeaseKey, l.LeaseOwner)
			}
		}
	}}
	// No SDK retries: one refused request is one failed read.
	_, store = dynaliteTableVia(t, table, reads, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })
	_, kin := startServer(t, server.Options{})
	servertest.CreateStream(t, kin, stream, 2)
	start(t, append(fast(stream, kin, store, "ksp-1"), consumer.WithHandler(newSink().handler("ksp-1")),
		consumer.WithWorkerMetrics(300*time.Millisecond))...)

	waitFor(t, 30*time.Second, "ksp-1 taking both leases on its own after 10 failed reads", func() bool {
		return owners(t, store)["ksp-1"] == 2
	})
	if n := reads.failed.Load(); n < 10 {
		t.Fatalf("ksp-1 took the leases after %d failed reads of the leader lock, want 10", n)
	}
}
