// Package kds (Kinesis Data Streams) holds the primitives every other ksp package shares: hash-key
// math (MD5 of a partition key read as an unsigned 128-bit integer, shard
// ranges), sequence numbers, stream ARNs, the service limits, and the table of
// AWS error codes with their HTTP status and retryability.
//
// The server uses the error table to encode failures and the clients use it to
// decode them, so errors.As, Code and IsRetryable give the same answers on both
// sides of the wire.
package kds
