//go:build unix

package multilang_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/multilang"
	"github.com/ksp-project/ksp/sdkhttp"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// processedHook counts the records the children acknowledged.
type processedHook struct {
	n    atomic.Int64
	want int64
	done func()
}

func (h *processedHook) OnRecordsProcessed(_ string, records, _ int, _ time.Duration) {
	if h.n.Add(int64(records)) >= h.want {
		h.done()
	}
}

// A record processor in any language runs under the daemon: here a
// shell script that acknowledges every message (amazon_kclpy and aws-kcl
// processors speak the same protocol). ksp kcl does this from a
// properties file.
func ExampleRun() {
	srv, err := server.New(server.Options{})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	client := kinesis.New(kinesis.Options{
		Region: srv.Region(), BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("ksp", "ksp", ""),
		HTTPClient:  sdkhttp.NewH2C(),
	})
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)}); err != nil {
		panic(err)
	}
	if err := servertest.WaitActive(ctx, client, "orders"); err != nil {
		panic(err)
	}
	for _, order := range []string{"apples", "pears", "plums"} {
		if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("customer-1"), Data: []byte(order)}); err != nil {
			panic(err)
		}
	}

	// processor.sh acknowledges every message with its status.
	dir, err := os.MkdirTemp("", "multilang-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "processor.sh")
	if err := os.WriteFile(script, []byte(`while IFS= read -r line; do
  action=$(printf '%s' "$line" | sed -n 's/^{"action":"\([A-Za-z]*\)".*/\1/p')
  [ -n "$action" ] && printf '{"action":"status","responseFor":"%s"}\n' "$action"
done
`), 0o644); err != nil {
		panic(err)
	}
	props, err := multilang.ParseProperties(strings.NewReader(`
executableName = sh ` + script + `
applicationName = orders-app
streamName = orders
initialPositionInStream = TRIM_HORIZON
`))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	hook := &processedHook{want: 3, done: cancel}
	err = multilang.Run(ctx, multilang.Config{
		Properties: props,
		Kinesis:    client,
		LeaseStore: memory.New(), // lease/dynamo in production
		Options:    []consumer.Option{consumer.WithHooks(hook)},
	})
	fmt.Println(err, hook.n.Load(), "records processed")
	// Output: <nil> 3 records processed
}
