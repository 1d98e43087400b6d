package emf_test

import (
	"io"
	"testing"
	"time"

	"github.com/ksp-project/ksp/metrics/emf"
	"github.com/ksp-project/ksp/producer"
)

// BenchmarkProducerRecordDone is the EMF hooks' cost per user record put.
func BenchmarkProducerRecordDone(b *testing.B) {
	w, err := emf.NewWriter(io.Discard, "bench")
	if err != nil {
		b.Fatal(err)
	}
	pm := emf.NewProducerMetrics(w)
	d := producer.UserRecordDone{Stream: "orders", Result: producer.Result{Attempts: 1}, Buffered: 3 * time.Millisecond, Latency: 5 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pm.OnUserRecordDone(d)
		}
	})
}
