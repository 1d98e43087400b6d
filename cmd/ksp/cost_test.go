package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestCostFromStream feeds a stream at a steady rate while ksp cost
// --from-stream measures it. The window is the server's snapshot times, the
// puts are timed on the same clock: the measured count lies between the
// records of the put calls that ran entirely inside the window and those
// of the calls that overlapped it. A snapshot stamps its time just before
// it reads the counters, so one put at each edge may fall on either side;
// the feeder is sequential, hence a slack of one put, and the check cannot
// flake on timing.
func TestCostFromStream(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	client := servertest.Client(t, srv)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("fed"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("fed"), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	const perPut, dataBytes = 20, 200 // partition keys "k" + 4 digits: 205 bytes a record
	type call struct{ start, end time.Time }
	var (
		mu    sync.Mutex
		calls []call
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // about 400 records/s: a put of 20 every 50 ms
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			entries := make([]types.PutRecordsRequestEntry, perPut)
			for j := range entries {
				entries[j] = types.PutRecordsRequestEntry{Data: make([]byte, dataBytes), PartitionKey: aws.String("k" + string(rune('0'+j%10)) + "000")}
			}
			start := time.Now()
			out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("fed"), Records: entries})
			if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
				t.Errorf("put: %v", err)
				return
			}
			mu.Lock()
			calls = append(calls, call{start, time.Now()})
			mu.Unlock()
		}
	}()
	var stdout, stderr strings.Builder
	code := Run(ctx, []string{"cost", "--from-stream", "fed", "--window", "1s", "--interval", "250ms", "--endpoint", srv.URL(), "--json", "--fanout", "2"}, &stdout, &stderr)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("ksp cost: exit %d: %s", code, stderr.String())
	}
	var got struct {
		Workload struct {
			RecordsPerSecond, RecordBytes float64
			RetentionHours                int
			PollingConsumers              int
			FanoutConsumers               int
		}
		Measured struct {
			Start, End time.Time
			Records    float64
		}
		Shards      int
		Provisioned struct{ Total float64 }
	}
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	inside, overlapping := 0, 0
	for _, c := range calls {
		if !c.start.Before(got.Measured.Start) && !c.end.After(got.Measured.End) {
			inside += perPut
		}
		if !c.end.Before(got.Measured.Start) && !c.start.After(got.Measured.End) {
			overlapping += perPut
		}
	}
	if n := int(got.Measured.Records); n < inside-perPut || n > overlapping+perPut || n == 0 || n%perPut != 0 {
		t.Fatalf("measured %d records, want whole puts of %d, between %d (puts inside the window) and %d (puts overlapping it), give or take one put",
			n, perPut, inside, overlapping)
	}
	secs := got.Measured.End.Sub(got.Measured.Start).Seconds()
	if r := got.Workload.RecordsPerSecond; r != got.Measured.Records/secs {
		t.Fatalf("records/s %v is not the measured %v records over %v s", r, got.Measured.Records, secs)
	}
	w := got.Workload
	if w.RecordBytes != dataBytes+5 || w.RetentionHours != 48 || w.PollingConsumers != 0 || w.FanoutConsumers != 2 || got.Shards != 1 || got.Provisioned.Total <= 0 {
		t.Fatalf("estimate = %+v", got)
	}
}

func TestCostFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "give --records-per-second"},
		{[]string{"--records-per-second", "10", "--record-bytes", "0"}, "record size 0"},
		{[]string{"--records-per-second", "10", "--record-bytes", "10", "--prices", "/nonexistent.json"}, "no such file"},
		{[]string{"--from-stream", "s"}, "give --endpoint"},
	} {
		var stderr strings.Builder
		if code := Run(context.Background(), append([]string{"cost"}, tc.args...), &strings.Builder{}, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("ksp cost %v: exit %d, %q; want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
