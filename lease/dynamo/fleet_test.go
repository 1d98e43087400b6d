package dynamo_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/internal/kcltable"
	"github.com/ksp-project/ksp/lease"
)

// testFleetItemsLikeKCL: with no leader lock no worker-metrics item is
// written; with one, the worker-metrics item ksp writes is the one a KCL
// 3.5 worker writes (kcltable.WorkerMetrics, after
// worker/metricstats/WorkerMetricStats.java LeaseTableWorkerMetricStats and
// WorkerMetricStatsReporter.java: leaseKey = worker id, entityType
// WORKER_METRIC_STATS, lut N, sts M of L of N, opr M of L of N, sup N, slu
// N), it never overwrites a lease, it is not a lease, and the leader lock
// the DynamoDB lock client writes is read back.
func testFleetItemsLikeKCL(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	const at = 1764633600
	if _, found, err := s.GetLeaderLock(ctx); err != nil || found {
		t.Fatalf("GetLeaderLock on a table without one = found %v, %v; want not found", found, err)
	}
	// No leader lock: nothing would read the item, so none is written (a
	// KCL 2.x worker would take it for a lease).
	if err := s.PutWorkerMetrics(ctx, lease.WorkerMetrics{WorkerID: "ksp-1", LastUpdate: time.Unix(at, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := rawGet(t, client, s.Table(), "ksp-1"); got != nil {
		t.Fatalf("PutWorkerMetrics without a leader wrote %#v", got)
	}
	lock := kcltable.LeaderLock("java-1", 120000, "6f1c3e2a-8d4b-4f7e-9a51-2c0d8b7e4f13")
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: lock}); err != nil {
		t.Fatal(err)
	}
	m := lease.WorkerMetrics{
		WorkerID: "ksp-1", LastUpdate: time.Unix(at, 0), SupportCode: 1,
		Stats:          map[string][]float64{"C": {12.5, 0, 100}},
		OperatingRange: map[string][]int64{"C": {100}},
	}
	if err := s.PutWorkerMetrics(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, want := rawGet(t, client, s.Table(), "ksp-1"), kcltable.WorkerMetrics("ksp-1", at, 12.5, 0, 100); !reflect.DeepEqual(got, want) {
		t.Errorf("worker metrics item:\n got  %#v\n want %#v", got, want)
	}
	// The next report replaces every attribute (the KCL's updateItem).
	m.LastUpdate, m.Stats, m.OperatingRange = time.Unix(at+30, 0), map[string][]float64{}, map[string][]int64{}
	if err := s.PutWorkerMetrics(ctx, m); err != nil {
		t.Fatal(err)
	}
	got := rawGet(t, client, s.Table(), "ksp-1")
	empty := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
	if !reflect.DeepEqual(got["lut"], nAV("1764633630")) || !reflect.DeepEqual(got["slu"], nAV("1764633630")) ||
		!reflect.DeepEqual(got["sts"], empty) || !reflect.DeepEqual(got["opr"], empty) {
		t.Errorf("second report: item = %#v; want lut = slu = 1764633630 and empty sts, opr (the KCL's default worker metric)", got)
	}
	if ls, err := s.ListLeases(ctx); err != nil || len(ls) != 0 {
		t.Errorf("ListLeases = %+v, %v; the metrics item is not a lease", ls, err)
	}
	if rs, err := s.ListWorkerReports(ctx); err != nil || !reflect.DeepEqual(rs, []lease.WorkerReport{{WorkerID: "ksp-1", LastUpdate: time.Unix(at+30, 0)}}) {
		t.Errorf("ListWorkerReports = %+v, %v; want ksp-1's last report alone (the lock is no report)", rs, err)
	}

	if _, err := s.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000001", Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	before := rawGet(t, client, s.Table(), "shardId-000000000001")
	m.WorkerID = "shardId-000000000001"
	if err := s.PutWorkerMetrics(ctx, m); !errors.Is(err, lease.ErrConditionFailed) {
		t.Errorf("PutWorkerMetrics over a lease: error = %v, want ErrConditionFailed", err)
	}
	if after := rawGet(t, client, s.Table(), "shardId-000000000001"); !reflect.DeepEqual(after, before) {
		t.Errorf("lease changed by PutWorkerMetrics:\n got  %#v\n want %#v", after, before)
	}
	if err := s.PutWorkerMetrics(ctx, lease.WorkerMetrics{}); !errors.Is(err, lease.ErrInvalidArgument) {
		t.Errorf("PutWorkerMetrics without a worker id: error = %v, want ErrInvalidArgument", err)
	}

	l, found, err := s.GetLeaderLock(ctx)
	want := lease.LeaderLock{Owner: "java-1", LeaseDuration: 2 * time.Minute, RecordVersion: "6f1c3e2a-8d4b-4f7e-9a51-2c0d8b7e4f13"}
	if err != nil || !found || l != want {
		t.Fatalf("GetLeaderLock = %+v, %v, %v; want %+v", l, found, err, want)
	}
	lock["isReleased"] = &types.AttributeValueMemberBOOL{Value: true}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table()), Item: lock}); err != nil {
		t.Fatal(err)
	}
	if l, _, err := s.GetLeaderLock(ctx); err != nil || !l.Released {
		t.Errorf("GetLeaderLock of a released lock = %+v, %v; want Released", l, err)
	}
}

// testLegacyLeaderLock: a KCL 3.0–3.4 application (or a 3.5 one whose table
// migration is not COMPLETE) keeps its leader lock in
// "<app>-CoordinatorState", hash key "key", and its worker metrics in
// "<app>-WorkerMetricStats", hash key "wid"; GetLeaderLock finds the lock
// there (a missing legacy table means no lock) and PutWorkerMetrics writes
// there.
func testLegacyLeaderLock(t *testing.T, client *dynamodb.Client) {
	s := newTable(t, client)
	mustTable(t, s)
	if _, found, err := s.GetLeaderLock(ctx); err != nil || found {
		t.Fatalf("GetLeaderLock without the legacy table = found %v, %v; want not found, nil", found, err)
	}
	for name, lt := range kcltable.LegacyTables(s.Table(), "java-1") {
		_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(name),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(lt.HashKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(lt.HashKey), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatal(err)
		}
		waitActive(t, client, name)
		for _, it := range lt.Items {
			if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: it}); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, found, err := s.GetLeaderLock(ctx)
	if err != nil || !found || !l.Legacy || l.Owner != "java-1" || l.LeaseDuration != 2*time.Minute || l.RecordVersion == "" {
		t.Fatalf("GetLeaderLock = %+v, %v, %v; want java-1's lock from the legacy table", l, found, err)
	}
	// The leader reads worker metrics from <app>-WorkerMetricStats (hash key
	// wid): ksp's item goes there, and none into the lease table, where a
	// KCL 3.0–3.4 worker would take it for a lease.
	const at = 1764633600
	m := lease.WorkerMetrics{
		WorkerID: "ksp-1", LastUpdate: time.Unix(at, 0), SupportCode: 1,
		Stats: map[string][]float64{"C": {7.25}}, OperatingRange: map[string][]int64{"C": {100}},
	}
	if err := s.PutWorkerMetrics(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := rawGet(t, client, s.Table(), "ksp-1"); got != nil {
		t.Errorf("lease table holds a metrics item %#v; want it in the legacy table only", got)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.Table() + "-WorkerMetricStats"), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"wid": sAV("ksp-1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := kcltable.WorkerMetrics("ksp-1", at, 7.25)
	delete(want, "leaseKey")
	want["wid"] = sAV("ksp-1")
	if !reflect.DeepEqual(out.Item, want) {
		t.Errorf("legacy worker metrics item:\n got  %#v\n want %#v", out.Item, want)
	}
	rs, err := s.ListWorkerReports(ctx)
	slices.SortFunc(rs, func(a, b lease.WorkerReport) int { return strings.Compare(a.WorkerID, b.WorkerID) })
	if wantRs := []lease.WorkerReport{{WorkerID: "java-1", LastUpdate: time.Unix(at, 0)}, {WorkerID: "ksp-1", LastUpdate: time.Unix(at, 0)}}; err != nil || !reflect.DeepEqual(rs, wantRs) {
		t.Errorf("ListWorkerReports = %+v, %v; want %+v from the legacy table", rs, err, wantRs)
	}
}

func waitActive(t *testing.T, client *dynamodb.Client, table string) {
	t.Helper()
	for range 3000 { // 30 s at most
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("table %s never became active", table)
}
