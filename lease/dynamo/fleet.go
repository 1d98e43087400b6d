package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/lease"
)

// The items of a KCL 3.5+ lease table a KCL 3.x leader reads besides the
// leases (amazon-kinesis-client 3.5.1, paths under
// src/main/java/software/amazon/kinesis/).
const (
	// worker/metricstats/WorkerMetricStats.java: LeaseTableWorkerMetricStats
	// keys the item by the worker id in leaseKey; the attributes are
	// KEY_LAST_UPDATE_TIME and the @DynamoDbAttribute names.
	entityWorkerMetrics = "WORKER_METRIC_STATS" // leases/EntityType.java
	attrLastUpdate      = "lut"                 // N, epoch seconds
	attrStats           = "sts"                 // M of L of N
	attrOperatingRange  = "opr"                 // M of L of N
	attrSupportCode     = "sup"                 // N
	attrSupportUpdate   = "slu"                 // N, epoch seconds
	attrWorkerID        = "wid"                 // S, hash key of <app>-WorkerMetricStats

	// leader/LeaderLock.java LEADER_HASH_KEY; the other names are the
	// DynamoDB lock client's (AmazonDynamoDBLockClient).
	leaderKey         = "Leader"
	attrOwnerName     = "ownerName"           // S
	attrLeaseDuration = "leaseDuration"       // S, milliseconds
	attrRecordVersion = "recordVersionNumber" // S, a UUID changed by each heartbeat
	attrIsReleased    = "isReleased"          // BOOL
)

var _ lease.FleetStore = (*Store)(nil)

// PutWorkerMetrics implements lease.FleetStore: one UpdateItem setting every
// attribute, as the KCL's WorkerMetricStatsDAODelegate.updateMetrics (an
// enhanced-client updateItem, ignoreNulls) does, in the table the fleet's
// leader reads: the lease table when the leader lock is there (a KCL 3.5+
// application whose table migration is COMPLETE), else, the lock being in
// <table>-CoordinatorState, "<table>-WorkerMetricStats" (hash key wid)
// when that table exists (KCL 3.0–3.4, or 3.5 before its migration
// completes: the leader then scans it, MigrationAwareLAMDataManager
// loadData), else the lease table. With no leader lock anywhere nothing
// would read the item, and nothing is written: so a lease table shared
// with KCL 2.x workers, which take every item for a lease, never gets
// one. In the lease table the KCL writes
// without a condition; ksp requires that the item is absent or a
// worker-metrics item, so a worker id equal to a lease key can never
// overwrite a lease.
func (s *Store) PutWorkerMetrics(ctx context.Context, m lease.WorkerMetrics) error {
	if err := s.open(); err != nil {
		return err
	}
	if m.WorkerID == "" {
		return fmt.Errorf("%w: dynamo: worker metrics: worker id is empty", lease.ErrInvalidArgument)
	}
	at := avN(m.LastUpdate.Unix())
	stats := make(map[string]types.AttributeValue, len(m.Stats))
	for name, vs := range m.Stats {
		l := make([]types.AttributeValue, len(vs))
		for i, v := range vs {
			l[i] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(v, 'f', -1, 64)}
		}
		stats[name] = &types.AttributeValueMemberL{Value: l}
	}
	ranges := make(map[string]types.AttributeValue, len(m.OperatingRange))
	for name, vs := range m.OperatingRange {
		l := make([]types.AttributeValue, len(vs))
		for i, v := range vs {
			l[i] = avN(v)
		}
		ranges[name] = &types.AttributeValueMemberL{Value: l}
	}
	in := &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              s.key(m.WorkerID),
		UpdateExpression: aws.String("SET #et = :et, #lut = :lut, #sts = :sts, #opr = :opr, #sup = :sup, #slu = :lut"),
		ExpressionAttributeNames: map[string]string{
			"#et": attrEntityType, "#lut": attrLastUpdate, "#sts": attrStats,
			"#opr": attrOperatingRange, "#sup": attrSupportCode, "#slu": attrSupportUpdate,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":et": avS(entityWorkerMetrics), ":lut": at, ":sup": avN(int64(m.SupportCode)),
			":sts": &types.AttributeValueMemberM{Value: stats}, ":opr": &types.AttributeValueMemberM{Value: ranges},
		},
	}
	lock, legacyLock, err := s.findLeaderItem(ctx)
	if err != nil {
		return err
	}
	if lock == nil {
		return nil
	}
	if legacyLock {
		legacy := s.table + "-WorkerMetricStats"
		in.TableName, in.Key = aws.String(legacy), map[string]types.AttributeValue{attrWorkerID: avS(m.WorkerID)}
		_, err := s.client.UpdateItem(ctx, in)
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			if err != nil {
				return fmt.Errorf("dynamo: put worker metrics %q in table %q: %w", m.WorkerID, legacy, err)
			}
			return nil
		}
		in.TableName, in.Key = aws.String(s.table), s.key(m.WorkerID)
	}
	in.ConditionExpression = aws.String("attribute_not_exists(#k) OR #et = :et")
	in.ExpressionAttributeNames["#k"] = attrLeaseKey
	_, err = s.client.UpdateItem(ctx, in)
	if isConditionFailed(err) {
		return fmt.Errorf("%w: dynamo: worker metrics %q in table %q: the item is not a worker-metrics item", lease.ErrConditionFailed, m.WorkerID, s.table)
	}
	if err != nil {
		return s.wrap("put worker metrics", m.WorkerID, err)
	}
	return nil
}

// GetLeaderLock implements lease.FleetStore: a consistent read of the item
// "Leader" in the lease table (entityType LEADER), where a KCL 3.5+
// application keeps it once its table migration is COMPLETE, else in
// "<table>-CoordinatorState" (hash key "key"), where KCL 3.0 to 3.4 keep it
// and 3.5 keeps it until then (coordinator/CoordinatorStateDAO.java: "the
// lock client options builder routes based on status"). A missing legacy
// table means no lock.
func (s *Store) GetLeaderLock(ctx context.Context) (lease.LeaderLock, bool, error) {
	if err := s.open(); err != nil {
		return lease.LeaderLock{}, false, err
	}
	item, legacy, err := s.findLeaderItem(ctx)
	if err != nil || item == nil {
		return lease.LeaderLock{}, false, err
	}
	l := lease.LeaderLock{Owner: strAttr(item, attrOwnerName), RecordVersion: strAttr(item, attrRecordVersion)}
	if ms, err := strconv.ParseInt(strAttr(item, attrLeaseDuration), 10, 64); err == nil && ms > 0 {
		l.LeaseDuration = time.Duration(ms) * time.Millisecond
	}
	if b, ok := item[attrIsReleased].(*types.AttributeValueMemberBOOL); ok {
		l.Released = b.Value
	}
	l.Legacy = legacy
	return l, true, nil
}

// ListWorkerReports implements lease.FleetStore: a scan of the lease table
// for the items with entityType WORKER_METRIC_STATS (as the KCL 3.5
// leader's WorkerMetricStatsDAO.getAllWorkerMetricStats filters them) and a
// scan of <table>-WorkerMetricStats when that table exists (KCL 3.0–3.4),
// reading only each item's worker id and lut.
func (s *Store) ListWorkerReports(ctx context.Context) ([]lease.WorkerReport, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	var out []lease.WorkerReport
	add := func(item map[string]types.AttributeValue, idAttr string) {
		id := strAttr(item, idAttr)
		n, ok := item[attrLastUpdate].(*types.AttributeValueMemberN)
		if id == "" || !ok {
			return
		}
		if secs, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			out = append(out, lease.WorkerReport{WorkerID: id, LastUpdate: time.Unix(secs, 0)})
		}
	}
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(s.table),
		FilterExpression:          aws.String("#et = :et"),
		ProjectionExpression:      aws.String("#k, #lut"),
		ExpressionAttributeNames:  map[string]string{"#et": attrEntityType, "#k": attrLeaseKey, "#lut": attrLastUpdate},
		ExpressionAttributeValues: map[string]types.AttributeValue{":et": avS(entityWorkerMetrics)},
	}
	if err := s.scanAll(ctx, in, func(item map[string]types.AttributeValue) { add(item, attrLeaseKey) }); err != nil {
		return nil, s.wrap("list worker reports", "", err)
	}
	legacy := s.table + "-WorkerMetricStats"
	in = &dynamodb.ScanInput{
		TableName:                aws.String(legacy),
		ProjectionExpression:     aws.String("#w, #lut"),
		ExpressionAttributeNames: map[string]string{"#w": attrWorkerID, "#lut": attrLastUpdate},
	}
	err := s.scanAll(ctx, in, func(item map[string]types.AttributeValue) { add(item, attrWorkerID) })
	var rnf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &rnf) {
		return nil, fmt.Errorf("dynamo: list worker reports in table %q: %w", legacy, err)
	}
	return out, nil
}

// scanAll runs in page by page, giving f every item.
func (s *Store) scanAll(ctx context.Context, in *dynamodb.ScanInput, f func(map[string]types.AttributeValue)) error {
	for {
		page, err := s.client.Scan(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range page.Items {
			f(item)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// findLeaderItem returns the leader lock item, and whether it is in the
// legacy table; nil when there is none.
func (s *Store) findLeaderItem(ctx context.Context) (item map[string]types.AttributeValue, legacy bool, err error) {
	item, err = s.getLeaderItem(ctx, s.table, attrLeaseKey)
	if err != nil {
		return nil, false, s.wrap("get leader lock", leaderKey, err)
	}
	if et := strAttr(item, attrEntityType); et != "" && et != "LEADER" {
		item = nil // a lease or another item under that key
	}
	if item != nil {
		return item, false, nil
	}
	table := s.table + "-CoordinatorState"
	item, err = s.getLeaderItem(ctx, table, "key")
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: get leader lock in table %q: %w", table, err)
	}
	return item, item != nil, nil
}

// getLeaderItem reads the item "Leader" of table, whose hash key is hashKey; nil
// when there is none.
func (s *Store) getLeaderItem(ctx context.Context, table, hashKey string) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{hashKey: avS(leaderKey)},
	})
	if err != nil || len(out.Item) == 0 {
		return nil, err
	}
	return out.Item, nil
}

func strAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
