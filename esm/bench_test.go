package esm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// BenchmarkRunNoopHandler measures records per second through esm.Run with
// a no-op handler (BatchSize 100), in process against the embedded server,
// and the run time per invoke (reads and checkpoints included).
func BenchmarkRunNoopHandler(b *testing.B) {
	srv := servertest.Start(b, server.Options{DisableLimits: true})
	client := servertest.Client(b, srv)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bench"), ShardCount: aws.Int32(1)}); err != nil {
		b.Fatal(err)
	}
	if err := servertest.WaitActive(ctx, client, "bench"); err != nil {
		b.Fatal(err)
	}
	const records = 5000
	entries := make([]types.PutRecordsRequestEntry, 500)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: make([]byte, 100)}
	}
	for range records / len(entries) {
		if _, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("bench"), Records: entries}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var invokes int
	var took time.Duration
	for range b.N {
		runCtx, cancel := context.WithCancel(ctx)
		seen := 0
		err := Run(runCtx, Config{
			Stream: "bench", Kinesis: client, LeaseStore: memory.New(), StartingPosition: TrimHorizon,
			PollInterval: time.Millisecond,
		}, func(_ context.Context, ev events.KinesisEvent) error {
			invokes++
			if seen += len(ev.Records); seen >= records {
				cancel()
			}
			return nil
		})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	took = b.Elapsed()
	b.ReportMetric(float64(records*b.N)/took.Seconds(), "records/s")
	b.ReportMetric(float64(took.Microseconds())/float64(invokes), "wall-µs/invoke") // run time per invoke, reads included
}
