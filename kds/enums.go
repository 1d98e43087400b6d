package kds

// The string enumerations of the Kinesis API. Each is a named type, so a
// value of one can never be passed where another is expected; the values are
// the wire strings. The server validates requests against the Values lists,
// which are in the order AWS names them in its validation messages.

// IteratorType is GetShardIterator's ShardIteratorType: where reading starts.
type IteratorType string

const (
	IteratorAfterSequenceNumber IteratorType = "AFTER_SEQUENCE_NUMBER"
	IteratorLatest              IteratorType = "LATEST"
	IteratorAtTimestamp         IteratorType = "AT_TIMESTAMP"
	IteratorAtSequenceNumber    IteratorType = "AT_SEQUENCE_NUMBER"
	IteratorTrimHorizon         IteratorType = "TRIM_HORIZON"
)

// IteratorTypes lists every IteratorType.
var IteratorTypes = []IteratorType{IteratorAfterSequenceNumber, IteratorLatest, IteratorAtTimestamp, IteratorAtSequenceNumber, IteratorTrimHorizon}

// ShardFilterType is ListShards' ShardFilter.Type: which shards to list.
type ShardFilterType string

const (
	ShardFilterAfterShardID    ShardFilterType = "AFTER_SHARD_ID"
	ShardFilterAtTrimHorizon   ShardFilterType = "AT_TRIM_HORIZON"
	ShardFilterFromTrimHorizon ShardFilterType = "FROM_TRIM_HORIZON"
	ShardFilterAtLatest        ShardFilterType = "AT_LATEST"
	ShardFilterAtTimestamp     ShardFilterType = "AT_TIMESTAMP"
	ShardFilterFromTimestamp   ShardFilterType = "FROM_TIMESTAMP"
)

// ShardFilterTypes lists every ShardFilterType.
var ShardFilterTypes = []ShardFilterType{ShardFilterAfterShardID, ShardFilterAtTrimHorizon, ShardFilterFromTrimHorizon, ShardFilterAtLatest, ShardFilterAtTimestamp, ShardFilterFromTimestamp}

// StreamMode is a stream's capacity mode.
type StreamMode string

const (
	StreamModeProvisioned StreamMode = "PROVISIONED"
	StreamModeOnDemand    StreamMode = "ON_DEMAND"
)

// StreamModes lists every StreamMode.
var StreamModes = []StreamMode{StreamModeProvisioned, StreamModeOnDemand}

// EncryptionType is a stream's server-side encryption.
type EncryptionType string

const (
	EncryptionNone EncryptionType = "NONE"
	EncryptionKMS  EncryptionType = "KMS"
)

// EncryptionTypes lists every EncryptionType.
var EncryptionTypes = []EncryptionType{EncryptionNone, EncryptionKMS}
