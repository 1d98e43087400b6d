package kds

import "time"

// Service limits of Kinesis Data Streams, as AWS documents them.
const (
	MaxRecordsPerPutRecords    = 500
	DefaultMaxRecordSize       = 1 << 20 // data + partition key, bytes
	MinMaxRecordSizeKiB        = 1024
	MaxMaxRecordSizeKiB        = 10240
	MaxPutRecordsRequestSize   = 5 << 20 // with the default MaxRecordSize
	MaxPartitionKeyLength      = 256
	MaxStreamNameLength        = 128
	ShardWriteBytesPerSecond   = 1 << 20
	ShardWriteRecordsPerSecond = 1000
	ShardReadBytesPerSecond    = 2 << 20
	ShardReadCallsPerSecond    = 5
	MaxGetRecordsLimit         = 10000
	MaxGetRecordsBytes         = 10 << 20
	MaxListShardsResults       = 10000
	DefaultRetentionHours      = 24
	MinRetentionHours          = 24
	MaxRetentionHours          = 8760
	IteratorLifetime           = 5 * time.Minute
	OnDemandDefaultShards      = 4
)
