// Package kcltable builds, for tests, the items a Java KCL 3.5 application
// leaves in its lease table besides its leases, attribute for attribute as
// the KCL (amazon-kinesis-client v3.5.1) writes them, so ksp can be tested
// against a table a KCL 3.5 application created.
package kcltable

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Entity types (leases/EntityType.java, getDdbValue).
const (
	EntityLease        = "LEASE"
	EntityLeader       = "LEADER"
	EntityMigration    = "CLIENT_VERSION_MIGRATION"
	EntityWorkerMetric = "WORKER_METRIC_STATS"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// LeaderLock is the leader-election lock item: key "Leader"
// (leader/LeaderLock.java LEADER_HASH_KEY) with entityType LEADER
// (CoordinatorState.serialize, passed as the lock's additional attributes in
// leader/DynamoDBLockBasedLeaderDecider.java), written by the DynamoDB lock
// client (awslabs/amazon-dynamodb-lock-client AmazonDynamoDBLockClient:
// ownerName, leaseDuration as a string of milliseconds, recordVersionNumber
// a UUID). The lease table's partition key leaseKey holds the lock key
// (coordinator/delegate/LeaseTableCoordinatorStateDAODelegate.java).
func LeaderLock(owner string, leaseDurationMillis int64, rvn string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"leaseKey":            s("Leader"),
		"entityType":          s(EntityLeader),
		"ownerName":           s(owner),
		"leaseDuration":       s(strconv.FormatInt(leaseDurationMillis, 10)),
		"recordVersionNumber": s(rvn),
	}
}

// MigrationState is the KCL 2.x → 3.x migration marker: key "Migration3.0"
// (coordinator/migration/MigrationState.java MIGRATION_HASH_KEY), entityType
// CLIENT_VERSION_MIGRATION, cv the client version, mb the worker that
// modified it, mts when (epoch milliseconds), h the history, newest first:
// a fresh 3.x application moves from CLIENT_VERSION_INIT to
// CLIENT_VERSION_3X (MigrationClientVersionStateInitializer.java).
func MigrationState(worker string, atMillis int64) map[string]types.AttributeValue {
	entry := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"cv": s("CLIENT_VERSION_INIT"), "mb": s(worker), "mts": n(atMillis - 1),
	}}
	return map[string]types.AttributeValue{
		"leaseKey":   s("Migration3.0"),
		"entityType": s(EntityMigration),
		"cv":         s("CLIENT_VERSION_3X"),
		"mb":         s(worker),
		"mts":        n(atMillis),
		"h":          &types.AttributeValueMemberL{Value: []types.AttributeValue{entry}},
	}
}

// WorkerMetrics is a worker's metrics item, keyed by its worker id
// (worker/metricstats/WorkerMetricStats.java LeaseTableWorkerMetricStats):
// entityType WORKER_METRIC_STATS, lut the last update (epoch seconds), sts
// the averaged metric values and opr the operating range, both by the
// metric's short name ("C" is CPU, worker/metric/WorkerMetricType.java),
// sup the support code and slu its update time (epoch seconds), as
// WorkerMetricStatsReporter.java reports them.
func WorkerMetrics(worker string, atSeconds int64, cpu ...float64) map[string]types.AttributeValue {
	vals := make([]types.AttributeValue, 0, len(cpu))
	for _, c := range cpu {
		vals = append(vals, &types.AttributeValueMemberN{Value: strconv.FormatFloat(c, 'f', -1, 64)})
	}
	return map[string]types.AttributeValue{
		"leaseKey":   s(worker),
		"entityType": s(EntityWorkerMetric),
		"lut":        n(atSeconds),
		"sts":        &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: vals}}},
		"opr":        &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": &types.AttributeValueMemberL{Value: []types.AttributeValue{n(100)}}}},
		"sup":        n(1),
		"slu":        n(atSeconds),
	}
}

// NonLeaseItems returns the items that are not leases a KCL 3.5
// application with the given workers leaves in its lease table: the leader
// lock held by the first worker, the migration marker and each worker's
// metrics.
func NonLeaseItems(workers ...string) []map[string]types.AttributeValue {
	const at = 1764633600 // 2025-12-02T00:00:00Z
	items := []map[string]types.AttributeValue{
		LeaderLock(workers[0], 120000, "6f1c3e2a-8d4b-4f7e-9a51-2c0d8b7e4f13"),
		MigrationState(workers[0], at*1000),
	}
	for i, w := range workers {
		items = append(items, WorkerMetrics(w, at, 12.5+float64(i), 13.25+float64(i)))
	}
	return items
}

// LegacyTables are the tables a KCL 3.0 to 3.4 application keeps next to its
// lease table (3.5 moved their items into it): worker metrics in
// "<app>-WorkerMetricStats", hash key wid (WorkerMetricStats.KEY_WORKER_ID,
// LeaseManagementConfig.WorkerMetricsTableConfig), and the leader lock and
// migration marker in "<app>-CoordinatorState", hash key key
// (LegacyTableCoordinatorStateDAODelegate, CoordinatorConfig). It returns,
// by table name, its hash key and its items, as the KCL writes them (without
// entityType, which those tables do not need).
func LegacyTables(app string, workers ...string) map[string]LegacyTable {
	metrics := LegacyTable{HashKey: "wid"}
	coord := LegacyTable{HashKey: "key"}
	for _, it := range NonLeaseItems(workers...) {
		t := &coord
		if it["entityType"].(*types.AttributeValueMemberS).Value == EntityWorkerMetric {
			t = &metrics
		}
		moved := make(map[string]types.AttributeValue, len(it))
		for k, v := range it {
			switch k {
			case "entityType":
			case "leaseKey":
				moved[t.HashKey] = v
			default:
				moved[k] = v
			}
		}
		t.Items = append(t.Items, moved)
	}
	return map[string]LegacyTable{app + "-WorkerMetricStats": metrics, app + "-CoordinatorState": coord}
}

// LegacyTable is one of LegacyTables.
type LegacyTable struct {
	HashKey string
	Items   []map[string]types.AttributeValue
}
