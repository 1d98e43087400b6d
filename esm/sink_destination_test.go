package esm

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ksp-project/ksp/sink"
)

// SinkDestination sends the invocation record's JSON keyed by the batch's
// shard, so a Kinesis sink keeps one shard's failures in order.
func TestSinkDestinationSendsTheRecordKeyedByShard(t *testing.T) {
	var got sink.Message
	d := SinkDestination(sink.Func(func(_ context.Context, m sink.Message) error { got = m; return nil }))
	rec := InvocationRecord{Version: "1.0", KinesisBatchInfo: KinesisBatchInfo{ShardID: "shardId-000000000007", BatchSize: 3}}
	if err := d.Deliver(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	var back InvocationRecord
	if err := json.Unmarshal(got.Body, &back); err != nil || back != rec || got.Key != "shardId-000000000007" {
		t.Fatalf("sent %s keyed %q (%v)", got.Body, got.Key, err)
	}
}
