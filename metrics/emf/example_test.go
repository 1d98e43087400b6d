package emf_test

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/metrics/emf"
	"github.com/ksp-project/ksp/producer"
)

// In Lambda or a container, the producer's metrics go to standard output as
// EMF, flushed every minute and once more when ctx ends.
func ExampleNewProducerMetrics() {
	ctx := context.Background()
	w, err := emf.NewWriter(os.Stdout, "orders-service")
	if err != nil {
		panic(err)
	}
	pm := emf.NewProducerMetrics(w)
	go pm.Run(ctx, time.Minute)

	var client *kinesis.Client // your Kinesis client
	p, err := producer.New(client, "orders", producer.WithHooks(pm))
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)
}

// Emit writes one document per call (more past the specification's limits).
func ExampleWriter_Emit() {
	w, err := emf.NewWriter(os.Stdout, "orders-service")
	if err != nil {
		panic(err)
	}
	err = w.Emit([]emf.Dimension{{Name: "StreamName", Value: "orders"}}, []emf.Metric{
		{Name: "OrdersShipped", Unit: emf.Count, Values: []float64{3}},
		{Name: "ShippingTime", Unit: emf.Milliseconds, Values: []float64{120, 95, 240}},
	})
	if err != nil {
		panic(err)
	}
}
