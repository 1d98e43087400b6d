// Reads one SubscribeToShard subscription with the AWS JavaScript SDK v3
// (@aws-sdk/client-kinesis, pinned in internal/peers/npm) and prints what it
// got as one JSON line. Arguments: endpoint, consumer ARN, shard id, and how
// many records to wait for.
const { KinesisClient, SubscribeToShardCommand } = require("@aws-sdk/client-kinesis");

async function main() {
  const [endpoint, consumerARN, shardId, want] = process.argv.slice(2);
  const client = new KinesisClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "ksp", secretAccessKey: "ksp" },
    maxAttempts: 1,
  });
  const out = await client.send(new SubscribeToShardCommand({
    ConsumerARN: consumerARN, ShardId: shardId, StartingPosition: { Type: "TRIM_HORIZON" },
  }));
  const result = { records: [], continuation: null, millisBehind: null, events: 0 };
  for await (const event of out.EventStream) {
    const e = event.SubscribeToShardEvent;
    if (!e) continue;
    result.events++;
    for (const r of e.Records) result.records.push(Buffer.from(r.Data).toString());
    result.continuation = e.ContinuationSequenceNumber;
    result.millisBehind = e.MillisBehindLatest;
    if (result.records.length >= Number(want)) break;
  }
  console.log(JSON.stringify(result));
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
