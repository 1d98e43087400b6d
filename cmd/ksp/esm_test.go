package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/ksp-project/ksp/esm"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server/servertest"
)

// esmStream creates a one-shard stream holding records r0…r(n-1) and
// returns their sequence numbers.
func esmStream(t *testing.T, name string, n int) []string {
	t.Helper()
	client := servertest.Client(t, startServer(t))
	ctx := t.Context()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(ctx, client, name); err != nil {
		t.Fatal(err)
	}
	return esmPut(t, client, name, 0, n)
}

// esmPut puts records r(first)…r(first+n-1) and returns their sequence
// numbers.
func esmPut(t *testing.T, client *kinesis.Client, name string, first, n int) []string {
	t.Helper()
	seqs := make([]string, n)
	for i := range seqs {
		out, err := client.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String(fmt.Sprint("k", first+i)), Data: fmt.Appendf(nil, "r%d", first+i)})
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = aws.ToString(out.SequenceNumber)
	}
	return seqs
}

// lambdaServer is a Lambda Invoke API on loopback: it answers each invoke
// with answer(records' data) and keeps the invokes, as "r0,r1".
type lambdaServer struct {
	mu      sync.Mutex
	invokes []string
}

func (l *lambdaServer) start(t *testing.T, answer func(w http.ResponseWriter, call int, data []string)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev events.KinesisEvent
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &ev); err != nil || r.URL.Path != "/2015-03-31/functions/f/invocations" {
			t.Errorf("invoke of %s with %s: %v", r.URL.Path, body, err)
		}
		var data []string
		for _, rec := range ev.Records {
			data = append(data, string(rec.Kinesis.Data))
		}
		l.mu.Lock()
		l.invokes = append(l.invokes, strings.Join(data, ","))
		call := len(l.invokes)
		l.mu.Unlock()
		answer(w, call, data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/2015-03-31/functions/f/invocations"
}

func TestESMCommandDrivesFunctionURL(t *testing.T) {
	moto := peers.StartMoto(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "ksp")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "ksp")
	sqsClient := sqs.NewFromConfig(servertest.Config("us-east-1"), func(o *sqs.Options) { o.BaseEndpoint = aws.String(moto) })
	q, err := sqsClient.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("esm-failures")})
	if err != nil {
		t.Fatal(err)
	}
	seqs := esmStream(t, "orders", 6)

	var l lambdaServer
	url := l.start(t, func(w http.ResponseWriter, call int, data []string) {
		switch call {
		case 2: // r3,r4,r5: r4 fails
			fmt.Fprintf(w, `{"batchItemFailures":[{"itemIdentifier":%q}]}`, seqs[4])
		case 3, 4: // r4,r5 then r4: a function error, as Lambda answers it
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorType":"Error","errorMessage":"bad order"}`)
		default:
			_, _ = io.WriteString(w, `{"batchItemFailures":[]}`)
		}
	})
	out := mustRun(t, "esm", "--stream", "orders", "--function-url", url, "--batch-size", "3",
		"--function-response-types", "ReportBatchItemFailures", "--bisect-batch-on-function-error",
		"--maximum-retry-attempts", "1", "--on-failure", "sqs:"+aws.ToString(q.QueueUrl), "--destination-endpoint", moto,
		"--poll", "10ms", "--count", "6", "--until-idle", "20s")

	if got, want := strings.Join(l.invokes, " | "), "r0,r1,r2 | r3,r4,r5 | r4,r5 | r4 | r5"; got != want {
		t.Fatalf("invokes %q; want %q", got, want)
	}
	sh := "shardId-000000000000"
	want := []string{
		sh + " records=3 result=Succeeded retries=0 checkpoint=" + seqs[2],
		sh + " records=3 result=PartialFailure retries=1 checkpoint=" + seqs[3],
		sh + " records=2 result=Bisected retries=1 checkpoint=-",
		sh + " records=1 result=FunctionError retries=2 checkpoint=-",
		sh + " records=1 result=RetryAttemptsExhausted retries=2 checkpoint=" + seqs[4],
		sh + " records=1 result=Succeeded retries=1 checkpoint=" + seqs[5],
		"esm: 5 invokes, 3 failed; 6 records settled, 1 given up",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}

	msg, err := sqsClient.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 2, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Messages) != 1 {
		t.Fatalf("%d messages on the on-failure queue; want 1", len(msg.Messages))
	}
	var rec esm.InvocationRecord
	if err := json.Unmarshal([]byte(aws.ToString(msg.Messages[0].Body)), &rec); err != nil {
		t.Fatal(err)
	}
	b := rec.KinesisBatchInfo
	if rec.RequestContext.Condition != esm.RetryAttemptsExhausted || rec.RequestContext.ApproximateInvokeCount != 3 ||
		rec.ResponseContext.FunctionError != "Unhandled" || b.ShardID != sh ||
		b.StartSequenceNumber != seqs[4] || b.EndSequenceNumber != seqs[4] || b.BatchSize != 1 {
		t.Fatalf("invocation record %+v; want r4 given up after 3 invokes", rec)
	}

	// Again, from the start, with every invoke failing and no retry: the
	// batch goes to S3 in moto, with its event.
	s3Client := s3.NewFromConfig(servertest.Config("us-east-1"), func(o *s3.Options) { o.BaseEndpoint = aws.String(moto); o.UsePathStyle = true })
	if _, err := s3Client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("esm-failures")}); err != nil {
		t.Fatal(err)
	}
	var failing lambdaServer
	url = failing.start(t, func(w http.ResponseWriter, _ int, _ []string) {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_, _ = io.WriteString(w, `{"errorType":"Error","errorMessage":"down"}`)
	})
	mustRun(t, "esm", "--stream", "orders", "--function-url", url, "--maximum-retry-attempts", "0",
		"--on-failure", "s3:esm-failures", "--destination-endpoint", moto, "--poll", "10ms", "--count", "6", "--until-idle", "20s")
	list, err := s3Client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("esm-failures")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 1 || !strings.HasPrefix(aws.ToString(list.Contents[0].Key), "aws/lambda/ksp-esm-orders/"+sh+"/") {
		t.Fatalf("objects %+v; want one under aws/lambda/ksp-esm-orders/%s/", list.Contents, sh)
	}
	obj, err := s3Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("esm-failures"), Key: list.Contents[0].Key})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	var stored struct {
		esm.InvocationRecord
		Payload events.KinesisEvent `json:"payload"`
	}
	if err := json.NewDecoder(obj.Body).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	if b := stored.KinesisBatchInfo; b.BatchSize != 6 || b.StartSequenceNumber != seqs[0] || b.EndSequenceNumber != seqs[5] ||
		len(stored.Payload.Records) != 6 || string(stored.Payload.Records[5].Kinesis.Data) != "r5" {
		t.Fatalf("S3 object %+v; want r0…r5 with their event", stored)
	}
}

func TestESMCommandBadInput(t *testing.T) {
	startServer(t)
	checkBadInput(t, []badInput{
		{[]string{"esm", "--stream", "s"}, 2, "--function-url are required"},
		{[]string{"esm", "--stream", "s", "--function-url", "ftp://x"}, 2, "want an http(s) URL"},
		{[]string{"esm", "--stream", "s", "--function-url", "http://127.0.0.1:1", "--on-failure", "kafka:topic"}, 2, "want file:PATH"},
		{[]string{"esm", "--stream", "s", "--function-url", "http://127.0.0.1:1", "--batch-size", "20000"}, 2, "batchSize"},
	})
}

// TestESMCommandLeaseDBResumes: a second run on the same --lease-db starts
// after the first run's checkpoint (reading with --fanout); a third gives a
// record up to a Kinesis stream.
func TestESMCommandLeaseDBResumes(t *testing.T) {
	esmStream(t, "resume", 3)
	var l lambdaServer
	url := l.start(t, func(w http.ResponseWriter, _ int, _ []string) { _, _ = io.WriteString(w, "null") })
	db := filepath.Join(t.TempDir(), "leases.db")
	run := func(n int, flags ...string) {
		mustRun(t, append([]string{"esm", "--stream", "resume", "--function-url", url, "--lease-db", db, "--poll", "10ms", "--count", fmt.Sprint(n), "--until-idle", "20s"}, flags...)...)
	}
	run(3)
	client := servertest.NewClient(os.Getenv("KSP_ENDPOINT"), "us-east-1")
	esmPut(t, client, "resume", 3, 2)
	run(2, "--fanout", "esm-app") // the same mapping, now over enhanced fan-out
	if got, want := strings.Join(l.invokes, " | "), "r0,r1,r2 | r3,r4"; got != want {
		t.Fatalf("invokes %q; want %q", got, want)
	}

	// A function failing for good, no retry: the batch's invocation record
	// goes to a Kinesis stream on the same endpoint.
	if _, err := client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String("failures"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(t.Context(), client, "failures"); err != nil {
		t.Fatal(err)
	}
	esmPut(t, client, "resume", 5, 1)
	var failing lambdaServer
	url = failing.start(t, func(w http.ResponseWriter, _ int, _ []string) {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_, _ = io.WriteString(w, `{"errorType":"Error","errorMessage":"down"}`)
	})
	run(1, "--maximum-retry-attempts", "0", "--on-failure", "kinesis:failures")
	it, err := client.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("failures"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "TRIM_HORIZON"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	var rec esm.InvocationRecord
	if len(out.Records) != 1 || json.Unmarshal(out.Records[0].Data, &rec) != nil ||
		rec.RequestContext.Condition != esm.RetryAttemptsExhausted || rec.KinesisBatchInfo.BatchSize != 1 {
		t.Fatalf("the failures stream holds %d records, the first %+v; want r5's invocation record", len(out.Records), rec)
	}
}
