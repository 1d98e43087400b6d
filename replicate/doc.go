// Package replicate copies one Kinesis stream into another, typically in
// another region or account: a consumer application (package consumer)
// reads the source and forwards every record through a producer (package
// producer) to the destination.
//
//	err := replicate.Run(ctx, replicate.Config{
//		From: "orders", Source: usEast1, Leases: leaseStore,
//		To: "orders-replica", Destination: euWest1,
//	})
//
// Run is one worker: several processes running it with the same lease
// table split the source's shards between them, as any consumer does.
//
// # Guarantees
//
//   - At-least-once: a source record is checkpointed only after the
//     destination acknowledged it and every record before it in its shard.
//     Each shard keeps at most MaxInFlight records sent and not yet
//     acknowledged, and checkpoints the acknowledged prefix every
//     MaxInFlight records and at the end of each batch. After a crash the
//     next owner of a shard sends again what the dead worker sent after its
//     last checkpoint: at most about 2 × MaxInFlight records per shard,
//     the only duplicates. A graceful shutdown or a lease hand-off between
//     workers sends nothing twice; a lease lost because its worker could
//     not renew it in time is like a crash of that shard.
//   - Per-key order: each partition key's records reach the destination in
//     source order. A key lives in one source shard at a time, whose
//     records are put from one goroutine in order; the producer runs with
//     StrictOrdering (one request per destination shard in flight, retries
//     before anything after them); after a source split or merge the
//     consumer finishes the parents before their children. With duplicates, the first copy of each record is in
//     order (a replayed batch repeats a suffix). The one exception: a record
//     the destination keeps refusing past the producer's RecordTTL fails
//     after later records of its window may have been acknowledged; they
//     are sent again after it.
//   - Keys: every record keeps its partition key. Its explicit hash key is
//     kept when the source shows it: Kinesis returns no explicit hash key
//     for plain records, only KPL aggregates carry them; records without one
//     are routed on the destination by the MD5 of their partition key.
//   - Aggregation: by default the destination producer aggregates (KPL
//     format) records predicted for the same destination shard, each
//     keeping its partition key and explicit hash key. A consumer that takes
//     aggregates apart (the KCL, package consumer) sees per-key order as
//     above; one that does not sees containers, and a container's key is
//     not a user record's. Pass producer.Aggregation(false) in
//     ProducerOptions to put every record as its own Kinesis record.
//   - Resharding: the source side follows splits and merges with the
//     consumer (parents before children); the destination side with the
//     producer, which refreshes its shard map when a record lands off its
//     predicted shard (see package producer for the one window in which a
//     split re-puts records of an aggregate that was in flight).
//   - Nothing is checkpointed past an undelivered record: a record the
//     destination refuses (too large, stream deleted, throttled past the
//     TTL) stops its shard: once the records in flight settled, the ones
//     before it are checkpointed, the failed one is tried again after a
//     back-off, logged and reported to HookDeliveryError, and the shard
//     waits for it. A Transform error does the same.
//
// # Lag
//
// Replication lag is the time from a record's arrival at the source
// (ApproximateArrivalTimestamp) to the destination's acknowledgement,
// reported per record to HookReplicationLag. Source arrival times are
// Kinesis' clock; the acknowledgement is this process's: the two must agree
// for the lag to be exact.
package replicate
