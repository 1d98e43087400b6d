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
// batch is cut before its JSON passes the 6 MB invoke payload cap. KPL
// aggregates reach the handler whole, as Lambda hands them over (one record
// whose data is the aggregate's bytes); Config.Deaggregate takes them apart
// instead, so the handler sees user records, several with one
// sequenceNumber (a partial response naming one retries from the first).
//
// # Guarantees
//
// Each shard is read by package consumer (leases in a lease.Store, so a
// restarted runner resumes from its checkpoints and several runners share
// the shards; children after parents on resharding), by polling, or with
// enhanced fan-out when ConsumerOptions holds consumer.WithFanOut (a
// mapping on a stream consumer's ARN). Within a shard (per partition key
// with ParallelizationFactor) one invoke runs at a time, in order, and:
//
//   - Without MaximumBatchingWindowInSeconds each read's records are invoked
//     at once, in batches of BatchSize. With it, records are gathered over
//     reads until BatchSize records (or 6 MB of event) are there, the window
//     has passed since the first was read, or the shard ends.
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
//   - The retry state of a failing batch (its attempts, bisected halves
//     included, with their invokes and failures) is kept with the lease as
//     the pending checkpoint's state, as Lambda keeps it in the mapping: a
//     restarted runner, or another taking the shard over, goes on with the
//     retries left instead of starting afresh. (In memory only with
//     ParallelizationFactor above 1 or tumbling windows.)
//   - An invoke that did not reach the function (an *InvokeError:
//     throttled with 429 TooManyRequestsException, a 5xx or other Invoke
//     API error, a failed request) is retried with back-off without
//     spending a retry attempt, until the records expire, as Lambda does.
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
//     (isFinalInvokeForWindow) once its end has passed on the clock (or a
//     record of a later window is read first), or at shard end
//     (isWindowTerminatedEarly, as when the state returned passes
//     MaxWindowStateBytes, 1 MB); then its last record is checkpointed, so
//     a restart replays the open window from its start with empty state.
//   - Nothing is checkpointed past a record that was not handled or
//     delivered to OnFailure: a failing destination is retried with
//     back-off, holding the shard. Without OnFailure a batch given up is
//     dropped, as in Lambda.
//
// InvokeHTTP is a handler that invokes a function in any language over the
// Lambda Invoke HTTP API (Lambda, `sam local start-lambda`, the runtime
// interface emulator): an X-Amz-Function-Error answer, a malformed response
// or the function timeout is a function error; another status than 200 is
// an *InvokeError. `ksp esm --function-url` runs it.
//
// ProcessBatch helps handler authors build partial batch responses, with
// an option to stop at the first failure so later records (of the same
// key) are never handled before it.
//
// # On-failure destinations
//
// OnFailure takes any Destination: FileDestination (JSON lines, synced),
// SQSDestination and SNSDestination (the record as the message body, as
// Lambda sends it), S3Destination (one object per record, which also
// carries the batch's event under "payload", at Lambda's key
// aws/lambda/MAPPING/SHARD/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-UUID), all through
// aws-sdk-go-v2 to any endpoint (tested against moto); HTTPDestination (a
// JSON POST, 2xx = delivered), KinesisDestination (a ksp extension), any
// sink.Sink through SinkDestination, or a DestinationFunc. A failing
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
//   - The batching window and tumbling windows act on the clock at the
//     pace of PollInterval (each empty read, or twice PollInterval without
//     a read under enhanced fan-out). A record put just before a tumbling
//     window's end but read after the window closed on the clock gets a
//     window of its own (same bounds, fresh state, its own final invoke).
//   - A timed-out handler cannot be killed in Go: its context is cancelled,
//     its invoke counts as a function error, and Run waits for it to return
//     before it returns.
//   - Invocation records of batches that expired before any invoke carry
//     approximateInvokeCount 0 and an empty responseContext; throttled
//     invokes are not counted in approximateInvokeCount.
//   - ParallelizationFactor: the n batchers share out the records of one
//     gathered batch and all finish before the next one's records are
//     handed out; Lambda keeps each batcher going on its own.
//   - Tumbling windows with ParallelizationFactor above 1 are refused
//     (ErrUnsupported).
package esm
