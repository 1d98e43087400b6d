package promkds_test

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/metrics/promkds"
	"github.com/ksp-project/ksp/producer"
)

// One collector for the producers and one for the consumers, registered
// once; each consumer gets its own hooks.
func Example() {
	pc := promkds.NewProducerCollector()
	cc := promkds.NewConsumerCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(pc, cc)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	var client *kinesis.Client // your Kinesis client
	p, err := producer.New(client, "orders", producer.WithHooks(pc))
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	c, err := consumer.New(consumer.WithStream("orders"), consumer.WithKinesis(client), consumer.WithHooks(cc.Hooks("orders", "billing")) /* lease store, handler ... */)
	if err != nil {
		panic(err)
	}
	_ = c
}
