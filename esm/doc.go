// Package esm runs AWS Lambda Kinesis handlers locally with the semantics
// of Lambda's event source mapping (ESM): the handler you pass to
// aws-lambda-go's lambda.Start in production is the one esm.Run drives
// against a ksp (or any Kinesis) stream.
//
//	err := esm.Run(ctx, esm.Config{
//		Stream: "orders", Kinesis: client, LeaseStore: store,
//		StartingPosition:           esm.TrimHorizon,
//		BatchSize:                  100,
//		BisectBatchOnFunctionError: true,
//		MaximumRetryAttempts:       esm.Int(2),
//		FunctionResponseTypes:      []string{esm.ReportBatchItemFailures},
//		OnFailure:                  dest,
//	}, handler)
//
// Config mirrors CreateEventSourceMapping with Lambda's defaults, ranges and
// validation messages (a *ValidationError carries the API's error code).
// Events are built as Lambda builds them (aws:kinesis records with eventID
// "shardId:sequenceNumber", approximateArrivalTimestamp in epoch seconds
// with milliseconds, invokeIdentityArn, awsRegion, eventSourceARN), and a
// batch is cut before its JSON passes the 6 MB invoke payload cap.
//
// # Guarantees
//
// Each shard is read by package consumer (leases in a lease.Store, so a
// restarted runner resumes from its checkpoints and several runners share
// the shards; children after parents on resharding). Within a shard (per
// partition key with ParallelizationFactor) one invoke runs at a time, in
// order, and:
//
//   - A successful invoke checkpoints the batch's last record.
//   - With ReportBatchItemFailures, a response naming failed records
//     checkpoints just before the lowest one and retries from it; an empty
//     list (or empty response) is a success; an empty itemIdentifier, or
//     one not in the batch, fails the whole batch.
//   - A function error is an error returned, a panic, or running past
//     FunctionTimeout. With BisectBatchOnFunctionError the batch is split
//     in two and each half retried, first half first; splitting spends no
//     retry attempt, so a single failing record is what spends them.
//   - Each failure (function error or partial response) counts against
//     MaximumRetryAttempts (-1: no limit). When they are exhausted, or when
//     records are older than MaximumRecordAgeInSeconds before an invoke, the
//     batch's invocation record (RetryAttemptsExhausted or
//     RecordAgeExceeded, with its KinesisBatchInfo) is delivered to
//     OnFailure and the shard moves past it.
//   - With ParallelizationFactor n > 1, up to n batches of a shard are
//     invoked at once, the records spread over them by a hash of the
//     partition key, so one key's records are still handled in order. The
//     shard is checkpointed only up to the longest run of records that are
//     all handled or given up.
//   - FilterCriteria (EventBridge patterns on the JSON data: literals,
//     null, "", anything-but, numeric, exists, prefix, suffix,
//     equals-ignore-case, $or): records matching no pattern are never
//     invoked and are checkpointed past.
//   - TumblingWindowInSeconds: windows are aligned on multiples of their
//     length by approximateArrivalTimestamp; a batch never spans two. Each
//     invoke gets the window, the shard id and the state the previous
//     invoke of the window returned (the tumbling-window handler type sees
//     them). A window closes with a final invoke without records
//     (isFinalInvokeForWindow), made when the shard's first record of a
//     later window is read, or at shard end (isWindowTerminatedEarly); then
//     its last record is checkpointed, so a restart replays the open
//     window from its start with empty state.
//   - Nothing is checkpointed past a record that was not handled or
//     delivered to OnFailure: a failing destination is retried with
//     back-off, holding the shard. Without OnFailure a batch given up is
//     dropped, as in Lambda.
//
// InvokeHTTP is a handler that invokes a function in any language over the
// Lambda Invoke HTTP API (Lambda, `sam local start-lambda`, the runtime
// interface emulator): an X-Amz-Function-Error answer, another status than
// 200, a malformed response or the function timeout is a function error.
// `ksp esm --function-url` runs it.
//
// ProcessBatch helps handler authors build partial batch responses, with
// an option to stop at the first failure so later records (of the same
// key) are never handled before it.
//
// # On-failure destinations
//
// OnFailure takes any Destination: FileDestination (JSON lines, synced),
// SQSDestination and SNSDestination (the record as the message body, as
// Lambda sends it; any SQS/SNS endpoint through aws-sdk-go-v2, tested
// against moto), HTTPDestination (a JSON POST, 2xx = delivered),
// KinesisDestination (a ksp extension), any sink.Sink through
// SinkDestination, or a DestinationFunc. A failing
// delivery is retried with back-off and holds the shard.
//
// # Metrics
//
// Config.Hooks takes values implementing any of the Hook* interfaces,
// mirroring Lambda's metrics: invocations and errors, iterator age, polled
// and filtered-out events, dropped events and on-failure deliveries; and
// HookOutcome, each invoke's result, retries spent and checkpoint.
//
// # Where ksp differs from Lambda
//
//   - Batching window: ksp polls each shard every max(PollInterval,
//     MaximumBatchingWindowInSeconds) and invokes with what arrived, cut
//     into BatchSize batches; Lambda also invokes early once a batch is full.
//   - KPL aggregates: Lambda hands the handler the aggregated Kinesis record
//     as it is; ksp takes aggregates apart (package consumer), so the handler
//     sees user records, several with one sequenceNumber. A partial response
//     naming such a sequence number retries from the first record of the
//     aggregate.
//   - Retry state (the counts of failures) lives in memory: after a restart
//     a batch starts again with none spent.
//   - A timed-out handler cannot be killed in Go: its context is cancelled,
//     its invoke counts as a function error, and Run waits for it to return
//     before it returns.
//   - Invocation records of batches that expired before any invoke carry
//     approximateInvokeCount 0 and an empty responseContext.
//   - ParallelizationFactor: the n batchers share out the records of one
//     read of the shard and all finish before the next read's records are
//     handed out; Lambda keeps each batcher going on its own.
//   - Tumbling windows: a window closes when a later record arrives or the
//     shard ends, not when its end passes on the clock with no new
//     records; the 1 MB state limit is not enforced; tumbling windows with
//     ParallelizationFactor above 1 are refused (ErrUnsupported).
//   - Not yet: S3 destinations (use a Destination of your own), enhanced
//     fan-out.
package esm
