// Package lease holds the shard lease model shared with the Java Kinesis
// Client Library (KCL) and the Store interface its lease tables implement.
//
// A lease gives one worker the right to process one shard (its LeaseKey is
// the shard id, or account:stream:creationEpoch:shardId in multi-stream
// mode). The fields and their meaning are exactly those of the KCL lease
// table, so a ksp consumer and a Java KCL application can share one table and
// take over each other's checkpoints. MultiStreamLeaseKey and
// ParseMultiStreamLeaseKey build and split multi-stream keys exactly as the
// KCL's MultiStreamLease and StreamIdentifier do.
//
// # Stores
//
// Three stores implement Store: lease/dynamo (a DynamoDB table in the KCL
// layout, for production), lease/sqlite (an embedded file that several
// processes on one host may share) and lease/memory (in-process, for tests).
// All three pass the conformance suite in lease/leasetest, so they behave the
// same.
//
// # Guarantees
//
// Every write is atomic and conditional. The leaseCounter is the lease's
// fencing token: RenewLease, TakeLease, UpdateCheckpoint and
// PrepareCheckpoint succeed only when the counter still has the value the
// caller last saw, and each success increments it by exactly one, so of
// several workers racing with the same counter exactly one wins. EvictLease
// is conditioned on the holder only and also increments the counter, which
// fences out any write prepared against the old value.
//
// A failed condition returns an error matching ErrConditionFailed; when the
// lease does not exist the error also matches ErrLeaseNotFound. Nothing is
// written in either case. Errors from the backing store are wrapped (check
// them with errors.As against the store's own types); a throttled request
// also matches ErrThrottled, and an operation on a missing table matches
// ErrTableNotFound.
//
// Writes touch only the attributes they change, so attributes a store does
// not model (for example columns a newer KCL adds) survive ksp's updates.
// Items of a KCL 3.5+ lease table that are not leases (see lease/dynamo) are
// never read as leases nor written.
//
// # Holder and hand-off
//
// KCL 3.x hands a lease over gracefully by setting leaseOwner to the new
// worker and checkpointOwner to the old one (Store.HandOffLease); the old
// worker keeps the lease until it has checkpointed and evicts itself. ksp follows the same rule: the
// holder of a lease (Lease.Holder) is its CheckpointOwner when that is set,
// otherwise its LeaseOwner, and the holder is who may renew, checkpoint and
// evict.
package lease
