package consumer

import "time"

// Record is one user record: a Kinesis record, or one of the user records a
// KPL aggregate carries.
type Record struct {
	// Data is the record's payload. It is valid until the processing call
	// returns; copy it to keep it.
	Data         []byte
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key in decimal, ""
	// when it has none (always "" for a record that was not aggregated).
	ExplicitHashKey string
	// SequenceNumber and SubSequenceNumber identify the record for
	// checkpoints: user records of one aggregate share the sequence number
	// and have sub-sequence numbers 0…n−1; a plain record has 0.
	SequenceNumber    string
	SubSequenceNumber int64
	// ApproximateArrivalTimestamp is when Kinesis accepted the record.
	ApproximateArrivalTimestamp time.Time
	// ShardID is the shard the record was read from.
	ShardID string
	// Stream is the name of the stream the record was read from.
	Stream string
	// Aggregated reports that the record came out of a KPL aggregate.
	Aggregated bool
}
