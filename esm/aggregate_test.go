package esm

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/aggregation"
)

// putAggregate puts a KPL aggregate of user records u-a, u-b, u-c (record
// r1 of the stream, after r0) and a plain record r2; it returns the
// aggregate's bytes.
func putAggregate(t *testing.T) (*stream, []byte) {
	s := newStream(t, 1)
	agg, err := aggregation.NewAggregator()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := agg.Add(k, "", []byte("u-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	ct := agg.Build(nil)
	out, err := s.client.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(s.name), PartitionKey: aws.String(ct.PartitionKey), Data: ct.Data})
	if err != nil {
		t.Fatal(err)
	}
	s.seqs = append(s.seqs, aws.ToString(out.SequenceNumber))
	s.put([]string{"k2"})
	return s, ct.Data
}

// logRecords logs an invoke as "invoke DATA@rN,…", the aggregate's data
// as "KPL".
func (s *stream) logRecords(aggregate []byte) func(context.Context, events.KinesisEvent) error {
	return func(_ context.Context, ev events.KinesisEvent) error {
		var names []string
		for _, r := range ev.Records {
			data := string(r.Kinesis.Data)
			if bytes.Equal(r.Kinesis.Data, aggregate) {
				data = "KPL"
			}
			if r.EventID != "shardId-000000000000:"+r.Kinesis.SequenceNumber {
				data += " with eventID " + r.EventID
			}
			names = append(names, fmt.Sprintf("%s@%s", data, s.rec(r.Kinesis.SequenceNumber)))
		}
		s.record("invoke " + strings.Join(names, ","))
		return nil
	}
}

// Lambda does not take KPL aggregates apart: the aggregate is one record
// of the event, its data the aggregate's bytes.
func TestKPLAggregateInvokedWholeAsLambdaDoes(t *testing.T) {
	s, aggregate := putAggregate(t)
	if !bytes.HasPrefix(aggregate, []byte{0xf3, 0x89, 0x9a, 0xc2}) {
		t.Fatalf("the aggregate lacks the KPL magic: % x", aggregate[:4])
	}
	got := run(s, s.config(), s.logRecords(aggregate))
	expectLog(t, got, "invoke r0@r0,KPL@r1,r2@r2", "checkpoint r2")
}

func TestDeaggregateHandsUserRecords(t *testing.T) {
	s, aggregate := putAggregate(t)
	cfg := s.config()
	cfg.Deaggregate = true
	got := run(s, cfg, s.logRecords(aggregate))
	expectLog(t, got, "invoke r0@r0,u-a@r1,u-b@r1,u-c@r1,r2@r2", "checkpoint r2")
}
