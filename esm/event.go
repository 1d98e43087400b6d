package esm

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/kds"
)

// MaxPayloadBytes is Lambda's synchronous invoke payload cap (6 MB): a
// batch is cut before its event JSON would pass it.
const MaxPayloadBytes = 6 * 1024 * 1024

// source is what every record of a stream's events shares.
type source struct {
	streamARN   string
	region      string
	account     string
	identityARN string
	functionARN string
	maxPayload  int // MaxPayloadBytes; tests lower it
}

// newSource derives region and account from the stream ARN
// (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME).
func newSource(streamARN string, cfg Config) (source, error) {
	region, account, _, err := kds.ParseStreamARN(streamARN)
	if err != nil {
		return source{}, fmt.Errorf("esm: %w", err)
	}
	s := source{streamARN: streamARN, region: region, account: account, identityARN: cfg.InvokeIdentityArn, functionARN: cfg.FunctionARN,
		maxPayload: MaxPayloadBytes}
	if cfg.maxPayload > 0 {
		s.maxPayload = cfg.maxPayload
	}
	if s.identityARN == "" {
		s.identityARN = "arn:aws:iam::" + s.account + ":role/ksp-esm"
	}
	if s.functionARN == "" {
		s.functionARN = "arn:aws:lambda:" + s.region + ":" + s.account + ":function:ksp-esm"
	}
	return s, nil
}

// eventRecord builds a record as Lambda does. The arrival time keeps
// millisecond precision, as Kinesis reports it, so the JSON carries epoch
// seconds with three decimals.
func (s source) eventRecord(r consumer.Record) events.KinesisEventRecord {
	return events.KinesisEventRecord{
		AwsRegion:         s.region,
		EventID:           r.ShardID + ":" + r.SequenceNumber,
		EventName:         "aws:kinesis:record",
		EventSource:       "aws:kinesis",
		EventSourceArn:    s.streamARN,
		EventVersion:      "1.0",
		InvokeIdentityArn: s.identityARN,
		Kinesis: events.KinesisRecord{
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: r.ApproximateArrivalTimestamp.Truncate(time.Millisecond)},
			Data:                        r.Data,
			PartitionKey:                r.PartitionKey,
			SequenceNumber:              r.SequenceNumber,
			KinesisSchemaVersion:        "1.0",
		},
	}
}

// eventEnvelope is the JSON around the records: {"Records":[ … ]}.
const eventEnvelope = len(`{"Records":[]}`)

// cutBatch returns how many records (at least one) go in the next invoke,
// given their event JSON sizes (recordSize, computed once per record when
// it is read): at most batchSize, and no more than fit in MaxPayloadBytes
// of event JSON (s.maxPayload).
// A single record over the cap still goes alone; Kinesis records are at
// most 1 MiB, so that never happens with a real stream.
func (s source) cutBatch(sizes []int, batchSize int) int {
	size := eventEnvelope
	for i, n := range sizes {
		if i == batchSize {
			return i
		}
		size += n
		if i > 0 {
			size++ // the comma
		}
		if size > s.maxPayload {
			return max(i, 1)
		}
	}
	return len(sizes)
}

// event builds the event of one invoke.
func (s source) event(batch []consumer.Record) events.KinesisEvent {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(batch))}
	for i, r := range batch {
		ev.Records[i] = s.eventRecord(r)
	}
	return ev
}

// recordSize is the size of r's JSON in an event. (Encoding an event
// record cannot fail: it holds strings, bytes and a time.)
func (s source) recordSize(r consumer.Record) int {
	b, _ := json.Marshal(s.eventRecord(r))
	return len(b)
}
