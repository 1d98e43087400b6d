package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/server/store"
)

// slowMeta is a disk store whose metadata writes take 5ms longer, as the
// JSON, fsync, rename and directory fsync of a real save do on a busy disk,
// without competing with the segment fsyncs for the device: what is left
// is the cost of the locks a save holds.
type slowMeta struct{ store.Store }

func (s slowMeta) SaveMeta(doc []byte) error {
	time.Sleep(5 * time.Millisecond)
	return s.Store.SaveMeta(doc)
}

// BenchmarkPutWhileTagging measures the put rate of one stream alone and
// while another stream's tags change in a loop (each change a metadata
// write), on a disk store with fsync always. It reports the ratio of the two
// rates: near 1 when metadata writes stay out of the way of puts (they run
// outside the server-wide lock); with the old locking (a save under the
// server-wide lock) it measured 0.41 on the 2-core CI machine, now 1.0.
func BenchmarkPutWhileTagging(b *testing.B) {
	d, err := store.OpenDisk(b.TempDir(), store.DiskOptions{})
	if err != nil {
		b.Fatal(err)
	}
	srv := servertest.Start(b, server.Options{Store: slowMeta{d}, DisableLimits: true})
	c := servertest.Client(b, srv, servertest.NoRetries)
	servertest.CreateStream(b, c, "hot", 4)
	servertest.CreateStream(b, c, "cold", 1)
	ctx := context.Background()
	entries := make([]types.PutRecordsRequestEntry, 10)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{Data: make([]byte, 100), PartitionKey: aws.String(fmt.Sprint("k", i))}
	}
	puts := func(n int) time.Duration {
		var (
			next atomic.Int64
			wg   sync.WaitGroup
		)
		start := time.Now()
		for range 4 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("hot"), Records: entries}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	b.ResetTimer()
	alone := puts(b.N)
	stop := make(chan struct{})
	var (
		tags int
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("cold"), Tags: map[string]string{"k": fmt.Sprint(i % 10)}}); err != nil {
				b.Error(err)
				return
			}
			tags++
		}
	})
	tagging := puts(b.N)
	close(stop)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(alone.Seconds()/tagging.Seconds(), "put-rate-while-tagging/alone")
	b.ReportMetric(float64(tags)/tagging.Seconds(), "tags/s")
}
