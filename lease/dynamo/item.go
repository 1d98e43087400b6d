package dynamo

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ksp-project/ksp/internal/dynamoattr"
	"github.com/ksp-project/ksp/lease"
)

// Attribute names of the KCL lease table (DynamoDBLeaseSerializer).
const (
	attrLeaseKey               = "leaseKey"                           // S, hash key
	attrLeaseOwner             = "leaseOwner"                         // S
	attrLeaseCounter           = "leaseCounter"                       // N
	attrOwnerSwitches          = "ownerSwitchesSinceCheckpoint"       // N
	attrCheckpoint             = "checkpoint"                         // S
	attrCheckpointSubSeq       = "checkpointSubSequenceNumber"        // N
	attrPendingCheckpoint      = "pendingCheckpoint"                  // S
	attrPendingCheckpointSub   = "pendingCheckpointSubSequenceNumber" // N
	attrPendingCheckpointState = "pendingCheckpointState"             // B
	attrParentShardID          = "parentShardId"                      // SS
	attrChildShardIDs          = "childShardIds"                      // SS
	attrStartingHashKey        = "startingHashKey"                    // S
	attrEndingHashKey          = "endingHashKey"                      // S
	attrThroughputKBps         = "throughputKBps"                     // N
	attrCheckpointOwner        = "checkpointOwner"                    // S
	attrEntityType             = "entityType"                         // S, KCL 3.5+
	// Multi-stream leases only (DynamoDBMultiStreamLeaseSerializer): the
	// stream identifier (named streamName "for legacy reasons") and the
	// shard id, which the KCL's list of one stream's leases filters on.
	attrStreamName = "streamName" // S
	attrShardID    = "shardId"    // S
)

// entityTypeLease is the entityType of a lease (EntityType.LEASE in the
// KCL's leases/EntityType.java). KCL 3.5+ keeps other items in the lease
// table, each with another entityType: the leader lock "Leader" (LEADER),
// the migration marker "Migration3.0" (CLIENT_VERSION_MIGRATION),
// worker-metrics items keyed by worker id (WORKER_METRIC_STATS) and, in
// multi-stream mode, stream records (STREAM). The value is case-sensitive.
const entityTypeLease = "LEASE"

// isLease reports whether item is a lease as the KCL decides it
// (DynamoDBLeaseSerializer.fromDynamoRecord): an item without entityType
// (written by a KCL before 3.5, or by ksp before it wrote one) or with
// entityType LEASE. Like the KCL's DynamoUtils.safeGetString, an entityType
// that is not a string counts as absent.
func isLease(item map[string]types.AttributeValue) bool {
	v, ok := item[attrEntityType].(*types.AttributeValueMemberS)
	return !ok || v.Value == entityTypeLease
}

func avS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func avN(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func avSS(v []string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }

// encodeItem returns the whole item for l, with the attributes the KCL
// writes for it (absent values are left out, as the KCL leaves them out),
// including entityType LEASE, which KCL 3.5+ writes on every lease it
// creates (DynamoDBLeaseSerializer.toDynamoRecord), and for a multi-stream
// lease key streamName and shardId (DynamoDBMultiStreamLeaseSerializer).
func encodeItem(l lease.Lease) map[string]types.AttributeValue {
	l = l.Normalize()
	item := map[string]types.AttributeValue{
		attrLeaseKey:      avS(l.LeaseKey),
		attrLeaseCounter:  avN(l.LeaseCounter),
		attrOwnerSwitches: avN(l.OwnerSwitchesSinceCheckpoint),
		attrEntityType:    avS(entityTypeLease),
	}
	if l.LeaseOwner != "" {
		item[attrLeaseOwner] = avS(l.LeaseOwner)
	}
	if l.Checkpoint.SequenceNumber != "" {
		item[attrCheckpoint] = avS(l.Checkpoint.SequenceNumber)
		item[attrCheckpointSubSeq] = avN(l.Checkpoint.SubSequenceNumber)
	}
	if l.PendingCheckpoint.SequenceNumber != "" {
		item[attrPendingCheckpoint] = avS(l.PendingCheckpoint.SequenceNumber)
		item[attrPendingCheckpointSub] = avN(l.PendingCheckpoint.SubSequenceNumber)
	}
	if len(l.PendingCheckpointState) > 0 {
		item[attrPendingCheckpointState] = &types.AttributeValueMemberB{Value: l.PendingCheckpointState}
	}
	if len(l.ParentShardIDs) > 0 {
		item[attrParentShardID] = avSS(l.ParentShardIDs)
	}
	if len(l.ChildShardIDs) > 0 {
		item[attrChildShardIDs] = avSS(l.ChildShardIDs)
	}
	if l.StartingHashKey != "" && l.EndingHashKey != "" {
		item[attrStartingHashKey] = avS(l.StartingHashKey)
		item[attrEndingHashKey] = avS(l.EndingHashKey)
	}
	if l.ThroughputKBps != 0 {
		item[attrThroughputKBps] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(l.ThroughputKBps, 'g', -1, 64)}
	}
	if l.CheckpointOwner != "" {
		item[attrCheckpointOwner] = avS(l.CheckpointOwner)
	}
	if id, shard, err := lease.ParseMultiStreamLeaseKey(l.LeaseKey); err == nil {
		item[attrStreamName] = avS(id.String())
		item[attrShardID] = avS(shard)
	}
	return item
}

// decodeItem reads a lease item as the KCL's serializer does: missing
// attributes are zero, attributes it does not know are ignored, and an
// attribute of the wrong type is an error. Callers skip items that are not
// leases (isLease) first.
func decodeItem(item map[string]types.AttributeValue) (lease.Lease, error) {
	d := decoder{item: item}
	l := lease.Lease{
		LeaseKey:                     d.str(attrLeaseKey),
		LeaseOwner:                   d.str(attrLeaseOwner),
		LeaseCounter:                 d.int(attrLeaseCounter),
		OwnerSwitchesSinceCheckpoint: d.int(attrOwnerSwitches),
		Checkpoint: lease.Checkpoint{
			SequenceNumber:    d.str(attrCheckpoint),
			SubSequenceNumber: d.int(attrCheckpointSubSeq),
		},
		PendingCheckpointState: d.bytes(attrPendingCheckpointState),
		ParentShardIDs:         d.set(attrParentShardID),
		ChildShardIDs:          d.set(attrChildShardIDs),
		StartingHashKey:        d.str(attrStartingHashKey),
		EndingHashKey:          d.str(attrEndingHashKey),
		ThroughputKBps:         d.float(attrThroughputKBps),
		CheckpointOwner:        d.str(attrCheckpointOwner),
	}
	// The KCL ignores a pending sub-sequence number without a pending
	// checkpoint, and a hash key range with a missing end.
	if seq := d.str(attrPendingCheckpoint); seq != "" {
		l.PendingCheckpoint = lease.Checkpoint{SequenceNumber: seq, SubSequenceNumber: d.int(attrPendingCheckpointSub)}
	}
	if l.StartingHashKey == "" || l.EndingHashKey == "" {
		l.StartingHashKey, l.EndingHashKey = "", ""
	}
	if d.err != nil {
		return lease.Lease{}, fmt.Errorf("lease item %q: %w", l.LeaseKey, d.err)
	}
	if l.LeaseKey == "" {
		return lease.Lease{}, fmt.Errorf("lease item without %s", attrLeaseKey)
	}
	return l.Normalize(), nil
}

// decoder reads typed attributes and keeps the first error.
type decoder struct {
	item map[string]types.AttributeValue
	err  error
}

func (d *decoder) fail(name string, v types.AttributeValue, want string) {
	if d.err == nil {
		d.err = fmt.Errorf("attribute %s has type %s, want %s", name, dynamoattr.TypeName(v), want)
	}
}

// value returns attribute name as a T, or false when it is absent or NULL;
// an attribute of another type is an error (as in the KCL's serializer).
func value[T types.AttributeValue](d *decoder, name string) (T, bool) {
	var zero T
	switch v := d.item[name].(type) {
	case nil, *types.AttributeValueMemberNULL:
		return zero, false
	case T:
		return v, true
	default:
		d.fail(name, v, dynamoattr.TypeName(zero))
		return zero, false
	}
}

func (d *decoder) str(name string) string {
	v, ok := value[*types.AttributeValueMemberS](d, name)
	if !ok {
		return ""
	}
	return v.Value
}

func (d *decoder) number(name string) (string, bool) {
	v, ok := value[*types.AttributeValueMemberN](d, name)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func (d *decoder) int(name string) int64 {
	raw, ok := d.number(name)
	if !ok {
		return 0
	}
	i, err := strconv.ParseInt(raw, 10, 64)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("attribute %s: %q is not a 64-bit integer", name, raw)
	}
	return i
}

func (d *decoder) float(name string) float64 {
	raw, ok := d.number(name)
	if !ok {
		return 0
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("attribute %s: %q is not a number", name, raw)
	}
	return f
}

func (d *decoder) bytes(name string) []byte {
	v, ok := value[*types.AttributeValueMemberB](d, name)
	if !ok {
		return nil
	}
	return v.Value
}

func (d *decoder) set(name string) []string {
	v, ok := value[*types.AttributeValueMemberSS](d, name)
	if !ok {
		return nil
	}
	return v.Value
}
