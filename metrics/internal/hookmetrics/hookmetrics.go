// Package hookmetrics maps the producer's and consumer's metrics hooks to one
// table of metrics named after the KPL's and the KCL's CloudWatch metrics, so
// that every exporter (Prometheus, CloudWatch EMF) reports the same metrics
// under the same names. An exporter implements Sink; Producer and Consumer
// implement the hooks and feed it.
package hookmetrics

import (
	"errors"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/producer"
)

// Kind says how a metric's values combine.
type Kind int

const (
	// Counter values are added up.
	Counter Kind = iota
	// Gauge values replace each other.
	Gauge
	// Distribution values are samples (a Prometheus histogram, an EMF
	// values array).
	Distribution
)

// CloudWatch units the metrics use.
const (
	Count        = "Count"
	Bytes        = "Bytes"
	Milliseconds = "Milliseconds"
)

// Label is one dimension of a metric: its Prometheus label and its
// CloudWatch dimension name.
type Label struct{ Prom, CloudWatch string }

// The labels of the metrics below.
var (
	Stream = Label{"stream", "StreamName"}
	Shard  = Label{"shard", "ShardId"}
	Code   = Label{"code", "ErrorCode"}
	App    = Label{"app", "ApplicationName"}
)

// Def is one metric. Values are recorded in Unit; a Prometheus exporter
// turns Milliseconds into seconds.
type Def struct {
	// Name is the KPL's or the KCL's CloudWatch name where one exists.
	Name string
	// Prom is the Prometheus name, without namespace and subsystem; it ends
	// in _total for counters and _seconds for times.
	Prom   string
	Kind   Kind
	Unit   string
	Help   string
	Labels []Label
	// Buckets are a distribution's Prometheus buckets, in Prometheus units.
	Buckets []float64
}

var (
	timeBuckets  = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	countBuckets = []float64{0, 1, 2, 5, 10, 25, 50, 100, 250, 500}
	retryBuckets = []float64{0, 1, 2, 3, 5, 10, 20}
)

// The producer's metrics (the KPL's names).
var (
	UserRecordsReceived = Def{Name: "UserRecordsReceived", Prom: "user_records_received_total", Kind: Counter, Unit: Count,
		Help: "User records accepted by Put.", Labels: []Label{Stream}}
	UserRecordsPending = Def{Name: "UserRecordsPending", Prom: "user_records_pending", Kind: Gauge, Unit: Count,
		Help: "User records buffered and not yet done (sampled about every 100 ms).", Labels: []Label{Stream}}
	UserRecordsPendingBytes = Def{Name: "UserRecordsPendingBytes", Prom: "user_records_pending_bytes", Kind: Gauge, Unit: Bytes,
		Help: "Bytes the buffered user records hold of the producer's budget.", Labels: []Label{Stream}}
	UserRecordsPut = Def{Name: "UserRecordsPut", Prom: "user_records_put_total", Kind: Counter, Unit: Count,
		Help: "User records put successfully.", Labels: []Label{Stream}}
	UserRecordsFailed = Def{Name: "UserRecordsFailed", Prom: "user_records_failed_total", Kind: Counter, Unit: Count,
		Help: "User records that ended in an error (expired, refused, or the producer closed).", Labels: []Label{Stream}}
	UserRecordExpired = Def{Name: "UserRecordExpired", Prom: "user_records_expired_total", Kind: Counter, Unit: Count,
		Help: "User records that failed because their time to live ran out.", Labels: []Label{Stream}}
	KinesisRecordsPut = Def{Name: "KinesisRecordsPut", Prom: "kinesis_records_put_total", Kind: Counter, Unit: Count,
		Help: "Kinesis records (aggregated or not) put successfully.", Labels: []Label{Stream}}
	KinesisRecordsDataPut = Def{Name: "KinesisRecordsDataPut", Prom: "kinesis_records_data_put_bytes_total", Kind: Counter, Unit: Bytes,
		Help: "Bytes (data and partition keys) of the Kinesis records put successfully.", Labels: []Label{Stream}}
	ErrorsByCode = Def{Name: "ErrorsByCode", Prom: "errors_total", Kind: Counter, Unit: Count,
		Help: "Failed PutRecords entries and requests, by AWS error code (Unknown for errors without one).", Labels: []Label{Stream, Code}}
	Throttles = Def{Name: "Throttles", Prom: "throttles_total", Kind: Counter, Unit: Count,
		Help: "Times Kinesis throttled a shard and the producer lowered its rate for it.", Labels: []Label{Stream, Shard}}
	RetriesPerRecord = Def{Name: "RetriesPerRecord", Prom: "retries_per_record", Kind: Distribution, Unit: Count,
		Help: "Retries per user record put successfully (0 when it went through the first time).", Labels: []Label{Stream}, Buckets: retryBuckets}
	BufferingTime = Def{Name: "BufferingTime", Prom: "buffering_time_seconds", Kind: Distribution, Unit: Milliseconds,
		Help: "Time from Put to the first request that carried the user record.", Labels: []Label{Stream}, Buckets: timeBuckets}
	UserRecordLatency = Def{Name: "UserRecordLatency", Prom: "user_record_latency_seconds", Kind: Distribution, Unit: Milliseconds,
		Help: "Time from Put to the user record's result.", Labels: []Label{Stream}, Buckets: timeBuckets}
	RequestTime = Def{Name: "RequestTime", Prom: "request_time_seconds", Kind: Distribution, Unit: Milliseconds,
		Help: "Time PutRecords requests took.", Labels: []Label{Stream}, Buckets: timeBuckets}
	KinesisRecordsPerPutRecordsRequest = Def{Name: "KinesisRecordsPerPutRecordsRequest", Prom: "kinesis_records_per_put_records_request", Kind: Distribution, Unit: Count,
		Help: "Kinesis records per PutRecords request.", Labels: []Label{Stream}, Buckets: countBuckets}
	UserRecordsPerPutRecordsRequest = Def{Name: "UserRecordsPerPutRecordsRequest", Prom: "user_records_per_put_records_request", Kind: Distribution, Unit: Count,
		Help: "User records per PutRecords request.", Labels: []Label{Stream}, Buckets: append(countBuckets, 1000, 2500, 5000, 10000)}
)

// ProducerDefs are the producer's metrics.
var ProducerDefs = []*Def{
	&UserRecordsReceived, &UserRecordsPending, &UserRecordsPendingBytes, &UserRecordsPut, &UserRecordsFailed,
	&UserRecordExpired, &KinesisRecordsPut, &KinesisRecordsDataPut, &ErrorsByCode, &Throttles,
	&RetriesPerRecord, &BufferingTime, &UserRecordLatency, &RequestTime,
	&KinesisRecordsPerPutRecordsRequest, &UserRecordsPerPutRecordsRequest,
}

// The consumer's metrics (the KCL's names). Every one carries the stream
// and the application.
var (
	RecordsProcessed = Def{Name: "RecordsProcessed", Prom: "records_processed_total", Kind: Counter, Unit: Count,
		Help: "User records the processor finished without error.", Labels: []Label{Stream, App, Shard}}
	DataBytesProcessed = Def{Name: "DataBytesProcessed", Prom: "data_bytes_processed_total", Kind: Counter, Unit: Bytes,
		Help: "Data bytes of the user records the processor finished.", Labels: []Label{Stream, App, Shard}}
	MillisBehindLatest = Def{Name: "MillisBehindLatest", Prom: "behind_latest_seconds", Kind: Gauge, Unit: Milliseconds,
		Help: "How far the shard's reader is behind the tip of the shard, at its last read.", Labels: []Label{Stream, App, Shard}}
	ProcessTime = Def{Name: "RecordProcessor.processRecords.Time", Prom: "process_records_seconds", Kind: Distribution, Unit: Milliseconds,
		Help: "Time the processor took per batch it finished.", Labels: []Label{Stream, App}, Buckets: timeBuckets}
	ProcessErrors = Def{Name: "ProcessErrors", Prom: "process_errors_total", Kind: Counter, Unit: Count,
		Help: "Batches the processor failed (error or panic); they are delivered again from the last checkpoint.", Labels: []Label{Stream, App, Shard}}
	Checkpoints = Def{Name: "Checkpoints", Prom: "checkpoints_total", Kind: Counter, Unit: Count,
		Help: "Checkpoints written.", Labels: []Label{Stream, App}}
	CheckpointErrors = Def{Name: "CheckpointErrors", Prom: "checkpoint_errors_total", Kind: Counter, Unit: Count,
		Help: "Checkpoint writes that failed.", Labels: []Label{Stream, App}}
	CurrentLeases = Def{Name: "CurrentLeases", Prom: "current_leases", Kind: Gauge, Unit: Count,
		Help: "Leases the worker holds, after its last lease-taking round.", Labels: []Label{Stream, App}}
	TakenLeases = Def{Name: "TakenLeases", Prom: "leases_taken_total", Kind: Counter, Unit: Count,
		Help: "Leases the worker took, stolen ones included.", Labels: []Label{Stream, App}}
	StolenLeases = Def{Name: "StolenLeases", Prom: "leases_stolen_total", Kind: Counter, Unit: Count,
		Help: "Leases the worker took from a live worker to balance the load.", Labels: []Label{Stream, App}}
	LostLeases = Def{Name: "LostLeases", Prom: "leases_lost_total", Kind: Counter, Unit: Count,
		Help: "Leases the worker lost (taken by another worker, or not renewed in time).", Labels: []Label{Stream, App}}
	ReadThrottles = Def{Name: "ReadThrottles", Prom: "read_throttles_total", Kind: Counter, Unit: Count,
		Help: "Reads of a shard that Kinesis throttled.", Labels: []Label{Stream, App, Shard}}
	RecordsDropped = Def{Name: "RecordsDropped", Prom: "records_dropped_total", Kind: Counter, Unit: Count,
		Help: "User records of aggregates dropped because their hash key lies outside the shard's range.", Labels: []Label{Stream, App, Shard}}
)

// ConsumerDefs are the consumer's metrics.
var ConsumerDefs = []*Def{
	&RecordsProcessed, &DataBytesProcessed, &MillisBehindLatest, &ProcessTime, &ProcessErrors,
	&Checkpoints, &CheckpointErrors, &CurrentLeases, &TakenLeases, &StolenLeases, &LostLeases,
	&ReadThrottles, &RecordsDropped,
}

// Values are a series' label values, in its Def's Labels order; the
// unused end is "". A fixed array, passed by value, so that recording
// allocates nothing.
type Values [MaxLabels]string

// MaxLabels is the most labels a metric has.
const MaxLabels = 3

// Sink receives metric values. Record adds a counter's value, sets a
// gauge's, or samples a distribution's; Forget drops a gauge's series (a
// shard whose lease was lost). Sinks are called from the clients'
// goroutines, several at once.
type Sink interface {
	Record(d *Def, v float64, labels Values)
	Forget(d *Def, labels Values)
}

// Producer adapts a Sink to every producer hook.
type Producer struct{ Sink Sink }

var _ interface {
	producer.HookUserRecordReceived
	producer.HookUserRecordDone
	producer.HookPutRecords
	producer.HookError
	producer.HookThrottle
	producer.HookBufferFill
} = Producer{}

func (p Producer) OnUserRecordReceived(stream string, _ int) {
	p.Sink.Record(&UserRecordsReceived, 1, Values{stream})
}

func (p Producer) OnUserRecordDone(d producer.UserRecordDone) {
	p.Sink.Record(&UserRecordLatency, ms(d.Latency), Values{d.Stream})
	if d.Result.Err != nil {
		p.Sink.Record(&UserRecordsFailed, 1, Values{d.Stream})
		if errors.Is(d.Result.Err, producer.ErrRecordExpired) {
			p.Sink.Record(&UserRecordExpired, 1, Values{d.Stream})
		}
		return
	}
	p.Sink.Record(&UserRecordsPut, 1, Values{d.Stream})
	p.Sink.Record(&RetriesPerRecord, float64(max(0, d.Result.Attempts-1)), Values{d.Stream})
	p.Sink.Record(&BufferingTime, ms(d.Buffered), Values{d.Stream})
}

func (p Producer) OnPutRecords(d producer.PutRecordsDone) {
	p.Sink.Record(&RequestTime, ms(d.Duration), Values{d.Stream})
	if d.KinesisRecords > 0 {
		p.Sink.Record(&KinesisRecordsPerPutRecordsRequest, float64(d.KinesisRecords), Values{d.Stream})
		p.Sink.Record(&UserRecordsPerPutRecordsRequest, float64(d.UserRecords), Values{d.Stream})
	}
	if d.PutKinesisRecords > 0 {
		p.Sink.Record(&KinesisRecordsPut, float64(d.PutKinesisRecords), Values{d.Stream})
		p.Sink.Record(&KinesisRecordsDataPut, float64(d.PutBytes), Values{d.Stream})
	}
}

func (p Producer) OnError(stream, _, code string) {
	if code == "" {
		code = "Unknown"
	}
	p.Sink.Record(&ErrorsByCode, 1, Values{stream, code})
}

func (p Producer) OnThrottle(stream, shardID string) {
	p.Sink.Record(&Throttles, 1, Values{stream, shardID})
}

func (p Producer) OnBufferFill(stream string, records int, bytes int64) {
	p.Sink.Record(&UserRecordsPending, float64(records), Values{stream})
	p.Sink.Record(&UserRecordsPendingBytes, float64(bytes), Values{stream})
}

// Consumer adapts a Sink to every consumer hook, for the consumer of
// Stream in application App.
type Consumer struct {
	Sink        Sink
	Stream, App string
}

var _ interface {
	consumer.HookShardLag
	consumer.HookRecordsProcessed
	consumer.HookProcessError
	consumer.HookCheckpoint
	consumer.HookLeaseTaken
	consumer.HookLeaseLost
	consumer.HookLeasesHeld
	consumer.HookThrottle
	consumer.HookRecordsDropped
} = Consumer{}

func (c Consumer) OnShardLag(shardID string, millis int64) {
	c.Sink.Record(&MillisBehindLatest, float64(millis), Values{c.Stream, c.App, shardID})
}

func (c Consumer) OnRecordsProcessed(shardID string, records, bytes int, took time.Duration) {
	c.Sink.Record(&RecordsProcessed, float64(records), Values{c.Stream, c.App, shardID})
	c.Sink.Record(&DataBytesProcessed, float64(bytes), Values{c.Stream, c.App, shardID})
	c.Sink.Record(&ProcessTime, ms(took), Values{c.Stream, c.App})
}

func (c Consumer) OnProcessError(shardID string, _ error) {
	c.Sink.Record(&ProcessErrors, 1, Values{c.Stream, c.App, shardID})
}

func (c Consumer) OnCheckpoint(_ string, _ lease.Checkpoint, err error) {
	if err != nil {
		c.Sink.Record(&CheckpointErrors, 1, Values{c.Stream, c.App})
		return
	}
	c.Sink.Record(&Checkpoints, 1, Values{c.Stream, c.App})
}

func (c Consumer) OnLeaseTaken(_ string, stolen bool) {
	c.Sink.Record(&TakenLeases, 1, Values{c.Stream, c.App})
	if stolen {
		c.Sink.Record(&StolenLeases, 1, Values{c.Stream, c.App})
	}
}

// OnLeaseLost also forgets the shard's lag: another worker reports it now,
// and a stale value would stay on this worker's series forever.
func (c Consumer) OnLeaseLost(shardID string) {
	c.Sink.Record(&LostLeases, 1, Values{c.Stream, c.App})
	c.Sink.Forget(&MillisBehindLatest, Values{c.Stream, c.App, shardID})
}

func (c Consumer) OnLeasesHeld(n int) {
	c.Sink.Record(&CurrentLeases, float64(n), Values{c.Stream, c.App})
}

func (c Consumer) OnThrottle(shardID string) {
	c.Sink.Record(&ReadThrottles, 1, Values{c.Stream, c.App, shardID})
}

func (c Consumer) OnRecordsDropped(shardID string, n int) {
	c.Sink.Record(&RecordsDropped, float64(n), Values{c.Stream, c.App, shardID})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
