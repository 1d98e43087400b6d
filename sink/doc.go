// Package sink delivers messages that must not be lost to somewhere outside
// the stream: a JSON-lines file, an SQS queue, an SNS topic, an HTTP
// endpoint, a Kinesis stream (directly or through the ksp producer), or a
// function. The consumer's dead-letter option and the esm runner's
// on-failure destinations both send through it.
//
// # Guarantees
//
//   - Send returns nil only once the message is accepted: written and
//     fsynced (File), acknowledged by SQS or SNS, answered 2xx (HTTP), put
//     into the stream (Kinesis, Producer). A caller that moves on only after
//     a nil Send (checkpointing, say) loses nothing; after a crash between
//     the two the message is sent again, so a sink is at-least-once.
//   - A Send that fails has an error saying which sink and why; it may be
//     retried. Sends do not retry on their own: the caller decides how long
//     to hold its position (the consumer blocks with back-off).
//   - MaxSize is the largest body a sink takes (SQS and SNS: 256 KiB,
//     Kinesis: 1 MiB less the partition key, the others no limit). Send
//     refuses a larger body with ErrTooLarge, before any I/O, so a caller can
//     shrink the message and send again.
//   - Every sink is safe for concurrent use.
package sink
