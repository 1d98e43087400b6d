package esm

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/ksp-project/ksp/consumer"
)

// awsExample is the first record of the Kinesis example event in the Lambda
// developer guide (with-kinesis).
const awsExample = `{"Records":[{
  "kinesis": {
    "kinesisSchemaVersion": "1.0",
    "partitionKey": "1",
    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
    "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
    "approximateArrivalTimestamp": 1545084650.987
  },
  "eventSource": "aws:kinesis",
  "eventVersion": "1.0",
  "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
  "eventName": "aws:kinesis:record",
  "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
  "awsRegion": "us-east-2",
  "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"
}]}`

func exampleSource(t *testing.T) source {
	t.Helper()
	src, err := newSource("arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream", Config{InvokeIdentityArn: "arn:aws:iam::123456789012:role/lambda-role"})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestEventMatchesAWSExample(t *testing.T) {
	src := exampleSource(t)
	ev := src.event([]consumer.Record{{
		Data:                        []byte("Hello, this is a test."),
		PartitionKey:                "1",
		SequenceNumber:              "49590338271490256608559692538361571095921575989136588898",
		ApproximateArrivalTimestamp: time.UnixMilli(1545084650987).Add(123 * time.Microsecond), // cut to ms
		ShardID:                     "shardId-000000000006",
	}})
	got, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var gotMap, wantMap map[string]any
	dec := func(b []byte, v any) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber() // compare numbers as written: seconds with 3 decimals
		if err := d.Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	dec(got, &gotMap)
	dec([]byte(awsExample), &wantMap)
	if !reflect.DeepEqual(gotMap, wantMap) {
		t.Fatalf("event\n got %s\nwant %s", got, awsExample)
	}

	// And it decodes into aws-lambda-go's type with the right values (its
	// float decoding lands within a microsecond of the millisecond).
	var back events.KinesisEvent
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	r := back.Records[0]
	if string(r.Kinesis.Data) != "Hello, this is a test." || r.Kinesis.ApproximateArrivalTimestamp.Round(time.Millisecond).UnixMilli() != 1545084650987 ||
		r.EventID != "shardId-000000000006:49590338271490256608559692538361571095921575989136588898" ||
		r.EventSourceArn != "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream" || r.AwsRegion != "us-east-2" {
		t.Fatalf("decoded %+v", r)
	}
}

func TestEventDefaultsFromStreamARN(t *testing.T) {
	src, err := newSource("arn:aws:kinesis:eu-west-1:000000000000:stream/s", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if src.region != "eu-west-1" || src.identityARN != "arn:aws:iam::000000000000:role/ksp-esm" ||
		src.functionARN != "arn:aws:lambda:eu-west-1:000000000000:function:ksp-esm" {
		t.Fatalf("%+v", src)
	}
	if _, err := newSource("arn:aws:sqs:eu-west-1:0:q", Config{}); err == nil || !strings.Contains(err.Error(), "arn:aws:sqs") {
		t.Fatalf("a queue ARN was accepted: %v", err)
	}
}

func TestBatchCutAtSixMegabytes(t *testing.T) {
	src := exampleSource(t)
	recs := make([]consumer.Record, 10)
	sizes := make([]int, len(recs))
	for i := range recs {
		recs[i] = consumer.Record{Data: make([]byte, 1<<20), PartitionKey: "k", SequenceNumber: "1", ShardID: "shardId-000000000000"}
		sizes[i] = src.recordSize(recs[i])
	}
	// 1 MiB of data is 1.33 MiB of base64: four records fit in 6 MB, five do not.
	if n := src.cutBatch(sizes, 100); n != 4 {
		t.Fatalf("cut at %d, want 4", n)
	}
	b, _ := json.Marshal(src.event(recs[:4]))
	if len(b) > MaxPayloadBytes {
		t.Fatalf("4 records make %d bytes", len(b))
	}
	if n := src.cutBatch(sizes[:3], 2); n != 2 {
		t.Fatalf("batch size 2 cut at %d", n)
	}
	if n := src.cutBatch(sizes[:1], 100); n != 1 {
		t.Fatalf("cut at %d", n)
	}
}
