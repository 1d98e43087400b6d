// Package autoscale scales a provisioned Kinesis stream with
// UpdateShardCount from its measured write load.
//
//	err := autoscale.Run(ctx, autoscale.Config{
//		Stream: "orders", Kinesis: client,
//		Metrics: autoscale.NewServerSource(nil, "http://127.0.0.1:4567"), // or a CloudWatch source
//	})
//
// Every Interval a Source measures the stream's incoming bytes/s and
// records/s and its throttled writes; utilization is what was asked of
// the shards (accepted plus throttled) over their write capacity (1 MiB/s
// and 1,000 records/s per shard), bytes or records, whichever is higher.
//
// # Policy
//
//   - Up quickly: once UpWindow of load has been measured since the last
//     change, a mean utilization above TargetUtilization scales up to the
//     count that brings it back to the target; writes throttled throughout
//     the window add a shard even when the mean is lower (a hot shard).
//   - Down slowly: only when a whole QuietPeriod measured since the last
//     change stayed below ScaleDownUtilization with no write throttled, to
//     the count that keeps the period's peak at the target.
//   - After a change the measurements start again (they were of another
//     shard count), so decisions never act on stale load, and a change is
//     never followed by another before UpWindow has passed.
//
// # Guarantees
//
//   - Never an UpdateShardCount that AWS would refuse for its limits: at
//     most double and at least half the open shards per call, at most
//     Rules.MaxShardsPerStream (a stream above it only scales down to
//     fewer), within the account's shard quota (DescribeLimits), at most
//     10 calls per second, and at most Rules.CallsPer24h calls in any
//     rolling 24 hours (each rule is
//     one entry of one table, see rules.go). The calls are counted in
//     memory: pass the earlier ones in Config.Calls when restarting, or the
//     count starts afresh (AWS then refuses an excess call with
//     LimitExceededException, which the scaler counts and backs off from).
//     The uniform scaling's short-lived intermediate shards also count
//     against the quota on AWS; a target within the quota can still be
//     refused when the account is nearly full.
//   - Only ACTIVE, PROVISIONED streams are scaled: an UPDATING stream is
//     waited for, an ON_DEMAND stream left to Kinesis.
//   - Every evaluation is a Decision, logged on one line (action, shards,
//     target, utilization, rates, reason) and given to OnDecision; DryRun
//     decides and logs without calling UpdateShardCount.
//   - A failed measurement or call is logged; the next interval tries
//     again. Nothing here blocks writers or readers: the stream stays
//     readable and writable while it scales.
package autoscale
