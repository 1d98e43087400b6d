package autoscale_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/autoscale"
	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// Decide on an idle stream of an embedded ksp server, measured by the
// server's own counters, without scaling it (a dry run). autoscale.Run
// makes a decision every Interval; a Scaler's Step makes one.
func ExampleScaler_Step() {
	srv, err := server.New(server.Options{})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx := context.Background()
	client := servertest.NewClient(srv.URL(), srv.Region())
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(4)}); err != nil {
		panic(err)
	}
	if err := servertest.WaitActive(ctx, client, "orders"); err != nil {
		panic(err)
	}
	s, err := autoscale.New(autoscale.Config{
		Stream: "orders", Kinesis: client, DryRun: true,
		Metrics: autoscale.NewSnapshotSource(func(context.Context) (*metrics.Snapshot, error) { return srv.Metrics(), nil }),
		// On AWS: autoscale.NewCloudWatchSource(cloudwatch.NewFromConfig(cfg), time.Minute)
	})
	if err != nil {
		panic(err)
	}
	d, err := s.Step(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Action, d.Shards, d.Target)
	// Output:
	// hold 4 4
}
