// Package multilang is the KCL's MultiLangDaemon without a JVM: it reads the
// daemon's properties file, consumes the stream with package consumer on
// the KCL's lease table, and runs the application's executable once per
// leased shard, speaking the MultiLang protocol with it over its stdin and
// stdout, so record processors written for amazon_kclpy (Python), aws-kcl
// (Node.js) and the other MultiLang clients run unchanged.
//
// # Protocol
//
// One JSON object a line, as the Java daemon
// (amazon-kinesis-client-multilang, packages multilang and
// multilang.messages) writes and reads them. The daemon sends initialize
// (shardId, sequenceNumber, subSequenceNumber: the checkpoint the shard
// resumes from), processRecords (records with data in base64, partitionKey,
// sequenceNumber, subSequenceNumber and approximateArrivalTimestamp in
// epoch milliseconds; millisBehindLatest), shardEnded, shutdownRequested
// (followed by leaseLost, as the KCL's shutdown task does) and leaseLost,
// and waits for {"action":"status","responseFor":ACTION}. Meanwhile the
// child may send {"action":"checkpoint"} with or without sequenceNumber
// and subSequenceNumber; the daemon checkpoints (the last record delivered
// when no sequence number is given; sub-sequence 0 when only a sequence
// number is) and answers {"action":"checkpoint",...,"error":NAME} with the
// KCL's exception names: ShutdownException (the lease is lost),
// IllegalArgumentException (a sequence number outside what was delivered),
// ThrottlingException, KinesisClientLibDependencyException (the lease
// table failed), InvalidStateException (a checkpoint during initialize or
// leaseLost). The child's stderr goes to the log, line by line.
//
// # Failures
//
// A child that exits, writes a line that starts like JSON but is not a
// message of the protocol, or is silent past timeoutInSeconds loses its
// shard's processor: it is killed, and the shard is given a new child,
// initialized at the last checkpoint, after the consumer's back-off; the
// records after the checkpoint are delivered again (at-least-once). Where
// the Java daemon exits the JVM, ksp restarts only that shard. Lines that
// do not start with '{' are logged and skipped, as the Java daemon skips
// lines it cannot parse.
//
// An executable that cannot run, and a properties file without a required
// key, fail Run before any lease is taken. A first child that answers its
// initialize with a well-formed message that is not the expected status
// (another protocol or version) stops Run with ErrProtocol.
//
// Everything else (leases, balancing, graceful hand-off, resharding,
// deaggregation with sub-sequence checkpoints) is package consumer's; see
// docs/multilang.md for the properties ksp honours and what differs from
// the Java daemon.
package multilang
