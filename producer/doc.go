// Package producer is a KPL-grade producer for Kinesis Data Streams: it
// batches user records into PutRecords requests, aggregates them in the KPL
// format, keeps within each shard's write limits, retries with backoff,
// and reports how every record ended.
//
//	p, err := producer.New(client, "orders")
//	h, err := p.Put(ctx, producer.Record{PartitionKey: producer.HashedKey(userID), Data: b})
//	res, err := h.Wait(ctx) // res.ShardID, res.SequenceNumber, res.SubSequenceNumber
//	err = p.Close(ctx)
//
// PutCallback takes a function instead of returning a handle, for callers
// that put millions of records a second and need no handle per record:
//
//	err := p.PutCallback(ctx, rec, func(res producer.Result) { ... })
//
// # How records travel
//
// Put validates a record (partition key, explicit hash key, size against
// the stream's MaxRecordSize) and predicts its shard from a shard map
// (ListShards, all pages). Records for one shard are packed into one
// container (a Kinesis record) until it reaches AggregationMaxSize or its
// oldest record has waited MaxBufferedTime; containers of all shards are
// collected into PutRecords requests of at most CollectionMaxCount records
// and CollectionMaxSize bytes. A container holds the records of one shard
// only and keeps each record's partition key and explicit hash key, so
// consumers that filter aggregates by hash range (the KCL,
// aggregation.DeaggregateShard) keep them all.
//
// Each shard has token buckets for records and bytes (RateLimit percent of
// 1,000 records/s and 1 MiB/s); a throttled shard's rate is halved and
// grows back by 5% per accepted request. Failed entries and failed requests
// are retried with exponential backoff and jitter, until RecordTTL.
//
// # Guarantees
//
//   - Every record Put or PutCallback accepted ends in exactly one Result,
//     delivered on its handle or to its callback: success (shard id,
//     sequence number, sub-sequence number, attempts), or an error:
//     ErrRecordExpired wrapping the last cause when RecordTTL passes, a
//     non-retryable Kinesis error, or ErrClosed wrapping the cause when
//     Close's context ends first. Records are never dropped without a
//     result.
//   - Bad input fails in Put with a *kds.Error (ValidationException or
//     InvalidArgumentException) naming the field and value; Put after Close
//     fails with ErrClosed. A record PutCallback refuses never reaches its
//     callback.
//   - Callbacks run on the producer's goroutines, after their request;
//     those of the records in one Kinesis record in Put order. When Close
//     returns, every callback has returned.
//   - Delivery is at least once: a request whose answer is lost (timeout,
//     connection reset) is retried, and Kinesis may then hold its records
//     twice.
//   - Memory: records without a result are bounded by BufferLimits (bytes
//     and records); when the budget is used up Put blocks, honouring its
//     context, or fails with ErrBufferFull (BufferFullPolicy).
//   - With WithBreaker, while Kinesis is failing every call (the breaker is
//     open) Put fails at once with ErrUnavailable and no request is sent;
//     buffered records wait for the breaker's probes (docs/failure.md).
//   - Ordering: with StrictOrdering, each shard's records (so each
//     partition key's) reach Kinesis in Put order, retries included: one
//     container per shard is in flight at a time. Without it, retries and
//     concurrent requests may reorder records.
//
// # Resharding
//
// When a result lands on a shard other than predicted, the shard map is
// refreshed before anything else is sent, and records predicted for closed
// shards are routed anew. An aggregate that was already in flight when its
// shard split may land on a child that does not own all its records;
// consumers that filter by hash range would drop those, so the producer
// puts them again (counted in Stats.Misrouted): filtering consumers see each
// record once, consumers that do not filter may see those twice. Kinesis
// offers no way to refuse a write to a closed shard, so no producer can
// avoid this window; it only opens on splits, for requests in flight.
//
// # Metrics
//
// Hooks (WithHooks) mirror the KPL's metrics; Stats returns running totals.
package producer
