package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestTopWhileRecordsFlow: ksp top to a pipe prints a plain frame per
// refresh, and while records flow into both shards each frame shows each
// shard's incoming records/s, moving, with the consuming application's
// lease owner.
func TestTopWhileRecordsFlow(t *testing.T) {
	srv := startServer(t)
	mustRun(t, "stream", "create", "flow", "--shards", "2")
	client := servertest.Client(t, srv)
	db := filepath.Join(t.TempDir(), "leases.db")
	store, err := sqlite.Open(context.Background(), db, "flow-app")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c := startConsumer(t, srv, "flow", store, "worker-top")

	// Put a batch to every shard every 10 ms, in a growing size, until the
	// test ends, so every refresh sees new and different rates.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		for i := 1; ctx.Err() == nil && i < 3000; i++ {
			var entries []types.PutRecordsRequestEntry
			for j := range 1 + i%7 {
				for _, hk := range []string{"0", "340282366920938463463374607431768211455"} {
					entries = append(entries, types.PutRecordsRequestEntry{
						Data: []byte(fmt.Sprint(i, j)), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(hk),
					})
				}
			}
			client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("flow"), Records: entries})
			time.Sleep(10 * time.Millisecond)
		}
	})
	// The consumer creates its lease table when Run starts; until then ksp
	// leases rightly fails with "no lease table".
	waitFor(t, "the consumer to create its lease table", func() bool {
		ok, err := store.TableExists(context.Background())
		return err == nil && ok
	})
	waitFor(t, "the consumer to hold both leases", func() bool {
		rows := leasesJSONOf(t, "flow-app", "--lease-db", db)
		return len(rows) == 2 && rows["shardId-000000000000"].Owner == "worker-top" && rows["shardId-000000000001"].Owner == "worker-top"
	})

	out := mustRun(t, "top", "flow", "--interval", "300ms", "--count", "3", "--app", "flow-app", "--lease-db", db)
	if strings.ContainsAny(out, "\r\x1b") {
		t.Fatalf("top to a pipe printed terminal controls:\n%q", out)
	}
	frames := strings.Split(strings.TrimSpace(out), "ksp top — ")
	if len(frames) != 4 { // "" before the first
		t.Fatalf("want 3 frames:\n%s", out)
	}
	row := regexp.MustCompile(`(?m)^(shardId-\d+)\s+([\d.]+)\s+(\d+)%.*worker-top`)
	seen := map[string][]float64{}
	for _, f := range frames[1:] {
		m := row.FindAllStringSubmatch(f, -1)
		if len(m) != 2 || !strings.Contains(f, "OWNER (flow-app)") {
			t.Fatalf("frame without two shard rows owned by worker-top:\n%s", f)
		}
		for _, r := range m {
			v, _ := strconv.ParseFloat(r[2], 64)
			if v <= 0 {
				t.Fatalf("shard %s shows %v records/s in while records flow:\n%s", r[1], v, f)
			}
			seen[r[1]] = append(seen[r[1]], v)
		}
	}
	for shard, rates := range seen {
		if rates[0] == rates[1] && rates[1] == rates[2] {
			t.Errorf("shard %s shows the same rate in every frame (%v): the numbers do not move", shard, rates)
		}
	}
	stop()
	wg.Wait()
	c.close()

	checkBadInput(t, []badInput{
		{[]string{"top", "nope", "--count", "1"}, 1, "ResourceNotFoundException"},
		{[]string{"top", "a", "b"}, 2, "at most one STREAM"},
		{[]string{"top", "--app", "x"}, 2, "--app needs a STREAM"},
		{[]string{"top", "flow", "--interval", "0s"}, 2, "--interval"},
		{[]string{"top", "flow", "--app", "nope", "--lease-db", db, "--count", "1"}, 1, "application nope has no lease table"},
	})
}

// TestTopCloudWatch: with --source cloudwatch, top reads the AWS/Kinesis
// shard-level sums of the latest settled minute (one that ended at least
// --cloudwatch-settle ago) from CloudWatch (moto here, with datapoints put
// there) and shows them per second; the minute that just ended, which
// CloudWatch may still be filling, is not read.
func TestTopCloudWatch(t *testing.T) {
	startServer(t)
	mustRun(t, "stream", "create", "cw", "--shards", "2")
	url := peers.StartMoto(t)
	cw := cloudwatch.New(cloudwatch.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("ksp", "ksp", ""),
	}, func(o *cloudwatch.Options) { o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801) }) // moto lacks CBOR
	at := time.Now().Truncate(time.Minute).Add(-90 * time.Second) // inside the latest settled minute
	// Dimensions in the order top asks for them: moto compares them as
	// lists (its Dimension ordering is broken), CloudWatch as sets.
	put := func(name string, v float64, dims ...string) {
		var ds []cwtypes.Dimension
		for i := 0; i+1 < len(dims); i += 2 {
			ds = append(ds, cwtypes.Dimension{Name: aws.String(dims[i]), Value: aws.String(dims[i+1])})
		}
		_, err := cw.PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{
			Namespace:  aws.String("AWS/Kinesis"),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String(name), Dimensions: ds, Timestamp: aws.Time(at), Value: aws.Float64(v)}},
		})
		if err != nil {
			t.Fatalf("PutMetricData: %v", err)
		}
	}
	shard0 := []string{"StreamName", "cw", "ShardId", "shardId-000000000000"}
	shard1 := []string{"StreamName", "cw", "ShardId", "shardId-000000000001"}
	put("IncomingRecords", 6000, shard0...) // 100/s
	put("IncomingBytes", 6000*512, shard0...)
	put("IncomingRecords", 30000, shard1...) // 500/s
	put("IteratorAgeMilliseconds", 2500, shard1...)
	put("IncomingRecords", 36000, "StreamName", "cw")
	at = at.Add(time.Minute) // the minute that just ended: not settled
	put("IncomingRecords", 600000, shard0...)

	out := mustRun(t, "top", "cw", "--source", "cloudwatch", "--cloudwatch-endpoint", url, "--cloudwatch-protocol", "query", "--count", "1")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^shardId-000000000000\s+100\s+10%\s+51200\s+5%`),
		regexp.MustCompile(`(?m)^shardId-000000000001\s+500\s+50%\s+0\s+0%.*\s2\.5s`),
		regexp.MustCompile(`in 600 rec/s`),
	} {
		if !want.MatchString(out) {
			t.Fatalf("top from CloudWatch lacks %v:\n%s", want, out)
		}
	}
}
