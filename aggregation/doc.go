// Package aggregation implements the KPL aggregated record format: many user
// records packed into one Kinesis record, byte-compatible with the Java KPL and
// KCL and with awslabs' aws-kinesis-agg.
//
// An aggregated record is the magic 0xF3 0x89 0x9A 0xC2, a protobuf
// AggregatedRecord (partition-key table, explicit-hash-key table, records) and
// the MD5 of the protobuf bytes.
//
// # Producing
//
// An [Aggregator] collects user records for one container. Its sizes are
// exact: [Aggregator.Size] is the length the container's data will have and
// [Aggregator.PutSize] adds the outer partition key, which Kinesis counts toward
// its record size limit. [Aggregator.Add] refuses a record that would push the
// container past its limit ([ErrFull]: build, then add again), so a built
// container is never too large. A container holding one user record is built
// raw, with that record's own keys, as the KPL does (unless its data starts
// with the magic, which would mislead consumers); a larger one carries the
// partition key "a" and, as ExplicitHashKey, the first user record's hash key,
// so it lands on the shard of its first record. Every record in one container
// should map to the same shard: consumers that filter by hash range (the KCL)
// drop records that do not. The Aggregator does not check this; keep one per
// predicted shard.
//
// The encoding is the canonical protobuf one the KPL writes (fields in number
// order; tests compare it with the protobuf library's), keys de-duplicated in
// first-use order, no tags.
//
// # Consuming
//
// [Deaggregate] and [DeaggregateShard] turn one Kinesis record into its user
// records, in order, with sub-sequence numbers 0…n−1 that are their positions
// in the container. They never panic and never drop a record silently:
//   - a record without the magic is passed through as one record (Aggregated
//     false, Err nil);
//   - a record with the magic that is not a valid aggregate (short, bad MD5,
//     bad protobuf, key index out of range, invalid explicit hash key, no
//     records) is passed through whole as one record with Err saying why
//     ([ErrChecksum], [ErrProtobuf], [ErrIndexRange], [ErrHashKey]);
//   - only [DeaggregateShard] drops records, those whose effective hash key lies
//     outside the shard's range, and it returns how many it dropped.
//
// Decoding is zero-copy for data: a user record's Data aliases the Kinesis
// record's Data. Keys are copied, so strings stay valid whatever the caller
// does with its buffers afterwards.
package aggregation
