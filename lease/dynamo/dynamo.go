// Package dynamo is a lease.Store on a DynamoDB table in the Java KCL 3.x
// layout: hash key leaseKey (S), PAY_PER_REQUEST, the
// LeaseOwnerToLeaseKeyIndex GSI (ListLeaseKeysForWorker queries it), and
// every attribute under the KCL's name and DynamoDB type (see the table in
// package lease, and docs/kcl-compat.md). A ksp consumer and a Java KCL
// application can therefore share one table.
//
// Its semantics are those of every lease.Store (see package lease). Each
// write is a single UpdateItem (or PutItem for creation) with a
// ConditionExpression; counters move with ADD. Writes name only the
// attributes they change, so attributes ksp does not model (a newer KCL's,
// a multi-stream worker's streamName and shardId) are kept. A created lease
// carries entityType LEASE, as KCL 3.5+ writes it, and a multi-stream one
// streamName and shardId, as the KCL's multi-stream serializer writes them.
//
// KCL 3.5+ also keeps items that are not leases in the lease table (its
// leader lock, migration marker and worker metrics), marked by an entityType
// other than LEASE. The store treats them exactly as the KCL does: no read
// returns them, IsTableEmpty does not count them, and no write changes them
// (every write is conditioned on the item being a lease).
//
// When the SDK retried a conditional write and the retry failed its
// condition, the first attempt may have succeeded after all; the store then
// reads the lease back and reports success when it shows exactly the write's
// effect, as the KCL does for renewals.
package dynamo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/internal/rules"
)

// API is the part of *dynamodb.Client the store uses.
type API interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateTable(context.Context, *dynamodb.UpdateTableInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// Option configures New.
type Option interface{ apply(*config) }

type config struct {
	consistentReads bool
	pollInterval    time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithConsistentReads sets whether GetLease, ListLeases and IsTableEmpty use
// strongly consistent reads. Default true: a worker deciding what to take
// should see the latest counters. (The reads that explain a failed write are
// always consistent.)
func WithConsistentReads(on bool) Option {
	return optionFunc(func(c *config) { c.consistentReads = on })
}

// WithPollInterval sets how often WaitUntilTableExists asks DescribeTable.
// Default 1s.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.pollInterval = d })
}

// Store is a lease table in DynamoDB.
type Store struct {
	client API
	table  string
	cfg    config
	closed atomic.Bool
}

var _ lease.Store = (*Store)(nil)

// New returns the store for the lease table named table (the KCL uses the
// application name). The client is not closed by Close.
func New(client API, table string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: dynamo: client is nil", lease.ErrInvalidArgument)
	}
	if table == "" {
		return nil, fmt.Errorf("%w: dynamo: table name is empty", lease.ErrInvalidArgument)
	}
	cfg := config{consistentReads: true, pollInterval: time.Second}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.pollInterval <= 0 {
		return nil, fmt.Errorf("%w: dynamo: poll interval %s must be positive", lease.ErrInvalidArgument, cfg.pollInterval)
	}
	return &Store{client: fixedAPI{client}, table: table, cfg: cfg}, nil
}

// Table returns the lease table's name.
func (s *Store) Table() string { return s.table }

func (s *Store) open() error {
	if s.closed.Load() {
		return lease.ErrClosed
	}
	return nil
}

// wrap classifies a DynamoDB error: a missing table matches
// lease.ErrTableNotFound, throttling lease.ErrThrottled; the original error
// stays reachable with errors.As.
func (s *Store) wrap(op, key string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	where := fmt.Sprintf("%s in table %q", op, s.table)
	if key != "" {
		where = fmt.Sprintf("%s %q in table %q", op, key, s.table)
	}
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("%w: dynamo: %s: %w", lease.ErrTableNotFound, where, err)
	}
	if isThrottle(err) {
		return fmt.Errorf("%w: dynamo: %s: %w", lease.ErrThrottled, where, err)
	}
	return fmt.Errorf("dynamo: %s: %w", where, err)
}

func isThrottle(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "ProvisionedThroughputExceededException", "ThrottlingException",
		"RequestLimitExceeded", "LimitExceededException":
		return true
	}
	return false
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func (s *Store) key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrLeaseKey: avS(k)}
}

// CreateTableIfNotExists implements lease.Store. The table is created as
// the KCL 3.x has it: hash key leaseKey (S), billing mode PAY_PER_REQUEST,
// and the LeaseOwnerToLeaseKeyIndex GSI (see ownerindex.go). On a table that
// exists without the index, the index is added as the KCL 3.x adds it at
// start-up (DynamoDBLeaseRefresher.createLeaseOwnerToLeaseKeyIndexIfNotExists);
// DynamoDB builds it in the background, and ListLeaseKeysForWorker scans
// until it is there (or for good, on an emulator that refuses to add it).
func (s *Store) CreateTableIfNotExists(ctx context.Context) (bool, error) {
	if err := s.open(); err != nil {
		return false, err
	}
	if out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table}); err == nil {
		if out.Table != nil && indexStatus(out.Table, ownerIndex) == "" {
			if _, err := s.createOwnerIndex(ctx, out.Table); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	_, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:              &s.table,
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String(attrLeaseKey), KeyType: types.KeyTypeHash}},
		AttributeDefinitions:   ownerIndexAttributes(),
		BillingMode:            types.BillingModePayPerRequest,
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{ownerIndexDefinition(nil)},
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap("create table", "", err)
	}
	return true, nil
}

// TableExists implements lease.Store: the table exists and is ACTIVE or
// UPDATING.
func (s *Store) TableExists(ctx context.Context) (bool, error) {
	if err := s.open(); err != nil {
		return false, err
	}
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap("describe table", "", err)
	}
	if out.Table == nil {
		return false, nil
	}
	st := out.Table.TableStatus
	return st == types.TableStatusActive || st == types.TableStatusUpdating, nil
}

// WaitUntilTableExists implements lease.Store.
func (s *Store) WaitUntilTableExists(ctx context.Context) error {
	return rules.WaitUntilTableExists(ctx, s.TableExists, s.cfg.pollInterval)
}

// IsTableEmpty implements lease.Store: the table holds no lease. Items that
// are not leases do not count, as the KCL's isLeaseTableEmpty does not count
// them (DynamoDBLeaseRefresher.list skips them).
func (s *Store) IsTableEmpty(ctx context.Context) (bool, error) {
	if err := s.open(); err != nil {
		return false, err
	}
	empty := true
	err := s.scan(ctx, "scan", func(item map[string]types.AttributeValue) bool {
		empty = !isLease(item)
		return empty
	})
	return empty, err
}

// scan reads the whole table page by page, calling f with each item until
// f returns false.
func (s *Store) scan(ctx context.Context, op string, f func(map[string]types.AttributeValue) bool) error {
	in := &dynamodb.ScanInput{TableName: &s.table, ConsistentRead: &s.cfg.consistentReads}
	for {
		page, err := s.client.Scan(ctx, in)
		if err != nil {
			return s.wrap(op, "", err)
		}
		for _, item := range page.Items {
			if !f(item) {
				return nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// CreateLeaseIfNotExists implements lease.Store.
func (s *Store) CreateLeaseIfNotExists(ctx context.Context, l lease.Lease) (bool, error) {
	if err := rules.CheckLease("create", l); err != nil {
		return false, err
	}
	if err := s.open(); err != nil {
		return false, err
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                &s.table,
		Item:                     encodeItem(l),
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": attrLeaseKey},
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap("create", l.LeaseKey, err)
	}
	return true, nil
}

// GetLease implements lease.Store.
func (s *Store) GetLease(ctx context.Context, key string) (lease.Lease, error) {
	if err := rules.CheckKey("get", key); err != nil {
		return lease.Lease{}, err
	}
	if err := s.open(); err != nil {
		return lease.Lease{}, err
	}
	return s.get(ctx, key, s.cfg.consistentReads)
}

func (s *Store) get(ctx context.Context, key string, consistent bool) (lease.Lease, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            s.key(key),
		ConsistentRead: &consistent,
	})
	if err != nil {
		return lease.Lease{}, s.wrap("get", key, err)
	}
	if len(out.Item) == 0 || !isLease(out.Item) {
		// An item that is not a lease is no lease, as for the KCL's getLease.
		return lease.Lease{}, fmt.Errorf("%w: %q in table %q", lease.ErrLeaseNotFound, key, s.table)
	}
	l, err := decodeItem(out.Item)
	if err != nil {
		return lease.Lease{}, fmt.Errorf("dynamo: get %q in table %q: %w", key, s.table, err)
	}
	return l, nil
}

// ListLeases implements lease.Store. It scans the whole table and leaves
// out the items that are not leases (KCL 3.5+ keeps its leader lock,
// migration marker and worker metrics there), as the KCL's
// DynamoDBLeaseRefresher.list does.
func (s *Store) ListLeases(ctx context.Context) ([]lease.Lease, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	out := []lease.Lease{}
	var corrupt []error
	err := s.scan(ctx, "list", func(item map[string]types.AttributeValue) bool {
		if !isLease(item) {
			return true
		}
		l, err := decodeItem(item)
		if err != nil {
			corrupt = append(corrupt, err)
			return true
		}
		out = append(out, l)
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b lease.Lease) int { return strings.Compare(a.LeaseKey, b.LeaseKey) })
	if len(corrupt) > 0 {
		return out, fmt.Errorf("dynamo: list table %q: %d items left out: %w: %w", s.table, len(corrupt), lease.ErrCorruptLease, errors.Join(corrupt...))
	}
	return out, nil
}

// update is one conditional UpdateItem.
type update struct {
	op, key string
	e       *expr
	set     []string // "#a = :v" clauses
	add     []string // "#a :v" clauses
	remove  []string // "#a" names
	cond    string
	// check is the write's condition and effect evaluated in Go; it
	// explains a failed condition.
	check rules.Mutation
	// done, when set, recognises a lease on which this write has already
	// taken effect (see explain).
	done func(cur lease.Lease) bool
}

func newUpdate(op, key string, check rules.Mutation) *update {
	return &update{op: op, key: key, e: newExpr(), check: check}
}

func (u *update) expression() string {
	var parts []string
	if len(u.set) > 0 {
		parts = append(parts, "SET "+strings.Join(u.set, ", "))
	}
	if len(u.add) > 0 {
		parts = append(parts, "ADD "+strings.Join(u.add, ", "))
	}
	if len(u.remove) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(u.remove, ", "))
	}
	return strings.Join(parts, " ")
}

// run sends the update. It returns the lease as stored afterwards, or an
// error matching lease.ErrConditionFailed (and lease.ErrLeaseNotFound when
// the lease is missing).
func (s *Store) run(ctx context.Context, u *update) (lease.Lease, error) {
	if err := s.open(); err != nil {
		return lease.Lease{}, err
	}
	var attempts atomic.Int32
	cond := "attribute_exists(" + u.e.name(attrLeaseKey) + ") AND " + isLeaseCond(u.e)
	if u.cond != "" {
		cond += " AND " + u.cond
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       s.key(u.key),
		UpdateExpression:          aws.String(u.expression()),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  u.e.names,
		ExpressionAttributeValues: u.e.valuesOrNil(),
		ReturnValues:              types.ReturnValueAllNew,
	}, countAttempts(&attempts))
	if err == nil {
		l, err := decodeItem(out.Attributes)
		if err != nil {
			return lease.Lease{}, fmt.Errorf("dynamo: %s %q in table %q: %w", u.op, u.key, s.table, err)
		}
		return l, nil
	}
	if !isConditionFailed(err) {
		return lease.Lease{}, s.wrap(u.op, u.key, err)
	}
	return s.explain(ctx, u, attempts.Load() > 1)
}

// explain reads the lease after a failed condition and says why it failed.
// When the SDK sent the write more than once and the stored lease shows the
// write's effect with exactly the counter it would have set, an earlier
// attempt succeeded and the write is reported as done (the KCL does the same
// for renewals). Without a retry this never applies, so of several callers
// with one counter exactly one succeeds.
func (s *Store) explain(ctx context.Context, u *update, retried bool) (lease.Lease, error) {
	cur, err := s.get(ctx, u.key, true)
	if errors.Is(err, lease.ErrLeaseNotFound) {
		return lease.Lease{}, rules.NotFound(u.op, u.key)
	}
	if err != nil {
		return lease.Lease{}, err
	}
	if retried && u.done != nil && u.done(cur) {
		return cur, nil
	}
	probe := cur.Clone()
	if u.check != nil {
		if err := u.check(&probe); err != nil {
			return lease.Lease{}, err
		}
	}
	// The lease meets the condition now, so it changed and changed back
	// between the write and this read.
	return lease.Lease{}, rules.Failed(u.op, u.key, "lease changed during the write")
}

// countAttempts counts the HTTP attempts the SDK makes for one call.
func countAttempts(n *atomic.Int32) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("kspCountAttempts",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					n.Add(1)
					return next.HandleFinalize(ctx, in)
				}), "Retry", middleware.After)
		})
	}
}

// isLeaseCond is the condition that the item is a lease (isLease), so no
// write of ksp ever changes one of the KCL's other items.
func isLeaseCond(e *expr) string {
	t := e.name(attrEntityType)
	return fmt.Sprintf("(attribute_not_exists(%s) OR NOT attribute_type(%s, %s) OR %s = %s)",
		t, t, e.value(avS(string(types.ScalarAttributeTypeS))), t, e.value(avS(entityTypeLease)))
}

// holderIs is the condition Holder() == owner.
func holderIs(e *expr, owner string) string {
	o := e.value(avS(owner))
	return fmt.Sprintf("(%s = %s OR (attribute_not_exists(%s) AND %s = %s))",
		e.name(attrCheckpointOwner), o, e.name(attrCheckpointOwner), e.name(attrLeaseOwner), o)
}

func counterIs(e *expr, counter int64) string {
	return e.name(attrLeaseCounter) + " = " + e.value(avN(counter))
}

func (u *update) incrementCounter() {
	u.add = append(u.add, u.e.name(attrLeaseCounter)+" "+u.e.value(avN(1)))
}

// RenewLease implements lease.Store.
func (s *Store) RenewLease(ctx context.Context, key, owner string, counter int64) (lease.Lease, error) {
	if err := checkOwnerKey("renew", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	u := newUpdate("renew", key, rules.Renew(owner, counter))
	u.cond = counterIs(u.e, counter) + " AND " + holderIs(u.e, owner)
	u.incrementCounter()
	u.done = func(cur lease.Lease) bool { return cur.LeaseCounter == counter+1 && cur.Holder() == owner }
	return s.run(ctx, u)
}

// TakeLease implements lease.Store.
func (s *Store) TakeLease(ctx context.Context, key, expectedOwner string, counter int64, newOwner string) (lease.Lease, error) {
	if err := checkOwnerKey("take", key, "new owner", newOwner); err != nil {
		return lease.Lease{}, err
	}
	u := newUpdate("take", key, rules.Take(expectedOwner, counter, newOwner))
	owner := u.e.name(attrLeaseOwner)
	if expectedOwner == "" {
		u.cond = counterIs(u.e, counter) + " AND attribute_not_exists(" + owner + ")"
	} else {
		u.cond = counterIs(u.e, counter) + " AND " + owner + " = " + u.e.value(avS(expectedOwner))
	}
	u.set = append(u.set, owner+" = "+u.e.value(avS(newOwner)))
	u.incrementCounter()
	if rules.TakeSwitchesOwner(expectedOwner, newOwner) {
		u.add = append(u.add, u.e.name(attrOwnerSwitches)+" "+u.e.value(avN(1)))
	}
	u.remove = append(u.remove, u.e.name(attrCheckpointOwner))
	u.done = func(cur lease.Lease) bool {
		return cur.LeaseCounter == counter+1 && cur.LeaseOwner == newOwner && cur.CheckpointOwner == ""
	}
	return s.run(ctx, u)
}

// HandOffLease implements lease.Store with the update the KCL's
// DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff sends.
func (s *Store) HandOffLease(ctx context.Context, key, owner, newOwner string) (lease.Lease, error) {
	if err := rules.CheckHandOff(key, owner, newOwner); err != nil {
		return lease.Lease{}, err
	}
	u := newUpdate("hand off", key, rules.HandOff(owner, newOwner))
	lo, co := u.e.name(attrLeaseOwner), u.e.name(attrCheckpointOwner)
	u.cond = lo + " = " + u.e.value(avS(owner)) + " AND attribute_not_exists(" + co + ")"
	u.set = append(u.set, lo+" = "+u.e.value(avS(newOwner)), co+" = "+u.e.value(avS(owner)))
	u.done = func(cur lease.Lease) bool { return cur.LeaseOwner == newOwner && cur.CheckpointOwner == owner }
	return s.run(ctx, u)
}

// EvictLease implements lease.Store. It tries the common case (no hand-off:
// remove leaseOwner) first and the hand-off case (remove checkpointOwner)
// when that condition fails.
func (s *Store) EvictLease(ctx context.Context, key, owner string) (lease.Lease, error) {
	if err := checkOwnerKey("evict", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	u := newUpdate("evict", key, nil)
	u.cond = u.e.name(attrLeaseOwner) + " = " + u.e.value(avS(owner)) +
		" AND attribute_not_exists(" + u.e.name(attrCheckpointOwner) + ")"
	u.remove = append(u.remove, u.e.name(attrLeaseOwner))
	u.incrementCounter()
	l, err := s.run(ctx, u)
	if !errors.Is(err, lease.ErrConditionFailed) || errors.Is(err, lease.ErrLeaseNotFound) {
		return l, err
	}
	u = newUpdate("evict", key, rules.Evict(owner))
	u.cond = u.e.name(attrCheckpointOwner) + " = " + u.e.value(avS(owner))
	u.remove = append(u.remove, u.e.name(attrCheckpointOwner))
	u.incrementCounter()
	return s.run(ctx, u)
}

// UpdateCheckpoint implements lease.Store.
func (s *Store) UpdateCheckpoint(ctx context.Context, key, owner string, counter int64, cp lease.Checkpoint) (lease.Lease, error) {
	if err := checkOwnerKey("checkpoint", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	if err := rules.CheckCheckpoint("checkpoint", key, cp); err != nil {
		return lease.Lease{}, err
	}
	u := newUpdate("checkpoint", key, rules.Checkpoint(owner, counter, cp))
	u.cond = counterIs(u.e, counter) + " AND " + holderIs(u.e, owner)
	u.set = append(u.set,
		u.e.name(attrCheckpoint)+" = "+u.e.value(avS(cp.SequenceNumber)),
		u.e.name(attrCheckpointSubSeq)+" = "+u.e.value(avN(cp.SubSequenceNumber)),
		u.e.name(attrOwnerSwitches)+" = "+u.e.value(avN(0)))
	u.incrementCounter()
	u.remove = append(u.remove, u.e.name(attrPendingCheckpoint), u.e.name(attrPendingCheckpointSub), u.e.name(attrPendingCheckpointState))
	u.done = func(cur lease.Lease) bool {
		return cur.LeaseCounter == counter+1 && cur.Holder() == owner && cur.Checkpoint == cp && cur.PendingCheckpoint.IsZero()
	}
	return s.run(ctx, u)
}

// PrepareCheckpoint implements lease.Store.
func (s *Store) PrepareCheckpoint(ctx context.Context, key, owner string, counter int64, pending lease.Checkpoint, state []byte) (lease.Lease, error) {
	if err := checkOwnerKey("prepare checkpoint", key, "owner", owner); err != nil {
		return lease.Lease{}, err
	}
	if err := rules.CheckCheckpoint("prepare checkpoint", key, pending); err != nil {
		return lease.Lease{}, err
	}
	u := newUpdate("prepare checkpoint", key, rules.Prepare(owner, counter, pending, state))
	u.cond = counterIs(u.e, counter) + " AND " + holderIs(u.e, owner)
	u.set = append(u.set,
		u.e.name(attrPendingCheckpoint)+" = "+u.e.value(avS(pending.SequenceNumber)),
		u.e.name(attrPendingCheckpointSub)+" = "+u.e.value(avN(pending.SubSequenceNumber)))
	if len(state) > 0 {
		u.set = append(u.set, u.e.name(attrPendingCheckpointState)+" = "+u.e.value(&types.AttributeValueMemberB{Value: state}))
	} else {
		u.remove = append(u.remove, u.e.name(attrPendingCheckpointState))
	}
	u.incrementCounter()
	u.done = func(cur lease.Lease) bool {
		return cur.LeaseCounter == counter+1 && cur.Holder() == owner && cur.PendingCheckpoint == pending &&
			bytes.Equal(cur.PendingCheckpointState, state)
	}
	return s.run(ctx, u)
}

// UpdateLeaseMeta implements lease.Store.
func (s *Store) UpdateLeaseMeta(ctx context.Context, key string, m lease.MetaUpdate) (lease.Lease, error) {
	if err := rules.CheckKey("update meta", key); err != nil {
		return lease.Lease{}, err
	}
	if m.IsEmpty() {
		if err := s.open(); err != nil {
			return lease.Lease{}, err
		}
		l, err := s.get(ctx, key, true)
		if errors.Is(err, lease.ErrLeaseNotFound) {
			return lease.Lease{}, rules.NotFound("update meta", key)
		}
		return l, err
	}
	u := newUpdate("update meta", key, rules.Meta(m))
	if ids := lease.NormalizeSet(m.ChildShardIDs); len(ids) > 0 {
		u.set = append(u.set, u.e.name(attrChildShardIDs)+" = "+u.e.value(avSS(ids)))
	}
	if m.StartingHashKey != "" && m.EndingHashKey != "" {
		u.set = append(u.set,
			u.e.name(attrStartingHashKey)+" = "+u.e.value(avS(m.StartingHashKey)),
			u.e.name(attrEndingHashKey)+" = "+u.e.value(avS(m.EndingHashKey)))
	}
	return s.run(ctx, u)
}

// DeleteLease implements lease.Store. An item that is not a lease is left
// alone, like a missing lease.
func (s *Store) DeleteLease(ctx context.Context, key string) error {
	if err := rules.CheckKey("delete", key); err != nil {
		return err
	}
	if err := s.open(); err != nil {
		return err
	}
	e := newExpr()
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.table, Key: s.key(key),
		ConditionExpression:       aws.String(isLeaseCond(e)),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.valuesOrNil(),
	})
	if err != nil && !isConditionFailed(err) {
		return s.wrap("delete", key, err)
	}
	return nil
}

// Close marks the store closed; it does not close the client.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

func checkOwnerKey(op, key, what, owner string) error {
	if err := rules.CheckKey(op, key); err != nil {
		return err
	}
	return rules.CheckOwner(op, key, what, owner)
}
