// Package consumer is a KCL-grade Kinesis consumer: the workers of an
// application share a lease table (the Java KCL's schema, see package lease)
// and split a stream's shards between them, each shard processed by one
// worker at a time.
//
//	c, err := consumer.New(
//		consumer.WithStream("orders"),
//		consumer.WithKinesis(kinesisClient),
//		consumer.WithLeaseStore(leaseStore),
//		consumer.WithHandler(func(ctx context.Context, records []consumer.Record) error { ... }),
//	)
//	err = c.Run(ctx) // until ctx ends; then a graceful shutdown
//
// Two processing APIs: a Handler gets each batch and the consumer
// checkpoints after it returns nil (and handles SHARD_END itself); a
// RecordProcessor gets the KCL lifecycle (Initialize, ProcessRecords with a
// Checkpointer, ShardEnded, ShutdownRequested, LeaseLost) and checkpoints
// when it chooses. WithRecordHandler is a Handler taking one record at a
// time (a failure names the record, so only it and what follows are
// delivered again).
//
// # Guarantees
//
//   - At-least-once: a record is delivered again only when it was not
//     checkpointed: after a crash (from the dead worker's last checkpoint,
//     once its leases expire), or after a failed batch. A graceful shutdown,
//     and moving a lease to balance the load (a graceful hand-off),
//     checkpoint and release, so the next owner replays nothing (with a
//     RecordProcessor: if it checkpoints in ShutdownRequested). A
//     processor that has not let go within WithHandOffTimeout is cancelled
//     and the lease moves anyway, replaying from its last checkpoint.
//   - A lost lease stops delivering: when a write finds another worker
//     holding the lease (or none), the shard stops at once; nothing more is
//     delivered after the batch being processed, and the batches fetched
//     ahead are dropped.
//   - Per-shard order: one goroutine processes a shard, batch after batch.
//   - Parent before child: after a split or merge, a child shard starts only
//     once every parent's lease is checkpointed at SHARD_END, so per
//     partition key the processing order is the put order.
//   - Nothing is checkpointed past a record that was not delivered: a
//     checkpoint lies between the last one and the last record delivered.
//   - KPL aggregates are taken apart (package aggregation; WithDeaggregation(false)
//     delivers them whole, as AWS Lambda does); checkpoints carry
//     the sub-sequence number, so a restart in the middle of an aggregate
//     resumes at the next user record. User records outside the shard's hash
//     range are dropped, logged and counted (HookRecordsDropped).
//
// # Leases
//
// A worker renews its leases every third of the failover time (default
// 10 s) by incrementing their counters, concurrently, so a slow lease never
// delays the others. Other workers consider a lease expired when its counter
// has not moved for a failover time by their own clock, so no clocks need to
// agree. Every sixth of the failover time a worker aims at ceil(leases /
// workers), counting the workers seen holding leases within the last
// failover time (so a rolling deploy moves nothing twice): it takes expired
// and unowned leases first, and when there are none asks the most loaded
// worker to hand leases over (WithMaxLeasesToSteal, default 1) as a KCL 3.x
// leader does: the holder finishes its batch, checkpoints and lets go. A
// worker that cannot renew a lease within the failover time stops
// processing it (LeaseLost), since another worker may have taken it. Shard
// sync (at start, every WithShardSyncInterval and when a shard ends) creates
// leases for new shards and deletes a finished parent's lease once every
// child's lease has left TRIM_HORIZON, as the KCL does. Leases handed to a
// worker by another ksp worker are found in the scan of the lease table
// each taking round makes; while it follows a KCL 3.x leader, the leases
// the leader assigns are found through the lease table's
// LeaseOwnerToLeaseKeyIndex, as the KCL 3.x finds them. A worker without
// WithWorkerMetrics refuses, before taking anything, the table of a live
// KCL 3.x fleet (ErrFleetTable).
// With WithWorkerMetrics the worker publishes a KCL 3.x worker-metrics item,
// so a KCL 3.x leader assigns it leases, and while that leader's lock is
// alive it takes only what the leader assigns (no taking nor balancing of
// its own); ksp never becomes the leader.
//
// WithStreams and WithStreamTracker follow several streams with one lease
// table, the KCL's multi-stream mode: lease keys
// account:stream:creationEpoch:shardId, one worker balancing the leases of
// all its streams. docs/kcl-compat.md lists what is shared with the KCL.
//
// # Failures
//
// A processor that returns an error or panics is given the shard again from
// its last checkpoint after a back-off; a Handler's batch is retried the
// same way. Throttled reads back off; an expired iterator is replaced by one
// after the last record read. A checkpoint that is not a sequence number of
// the shard, a corrupt lease, a failing or slow lease store are logged and
// retried with back-off, while the worker's other shards keep going.
//
// Opt-in, with a Handler or a RecordHandler (docs/failure.md):
// WithDeadLetter gives up a batch, or a single record, after N failed
// attempts to a sink (package sink) as DeadLetter entries, and checkpoints
// past it only once the sink accepted them all (a failing sink holds the
// shard; a crash in between re-sends at most that unit). WithBreaker pauses
// a shard while its downstream's circuit breaker is open: no handler call,
// no checkpoint, leases still renewed, growing lag reported.
//
// # Retrieval
//
// Shards are read by polling GetRecords (WithMaxRecords, WithIdleTime), up
// to WithPrefetch batches ahead of the processor; a slow processor stops
// the reader, so memory stays bounded. The records' data are decoded into
// memory the consumer reuses for later batches once the processing call
// has returned: Record.Data is valid only until then. Retrieval sits behind an internal
// per-shard reader interface so enhanced fan-out can plug in.
//
// # Metrics
//
// WithHooks takes values implementing any of the Hook* interfaces: lag
// (millis behind latest) per shard, records and bytes processed with the
// time taken, checkpoints, leases held, taken, stolen and lost, throttles,
// dropped records, processing errors.
package consumer
