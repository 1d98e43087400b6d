package promkds_test

import (
	"testing"
	"time"

	"github.com/ksp-project/ksp/metrics/promkds"
	"github.com/ksp-project/ksp/producer"
)

// BenchmarkProducerRecordDone is the collector's cost per user record put:
// the hook the producer calls once per record.
func BenchmarkProducerRecordDone(b *testing.B) {
	pc := promkds.NewProducerCollector()
	d := producer.UserRecordDone{Stream: "orders", Result: producer.Result{Attempts: 1}, Buffered: 3 * time.Millisecond, Latency: 5 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pc.OnUserRecordDone(d)
		}
	})
}
