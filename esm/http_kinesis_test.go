package esm

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestOnFailureToHTTP(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // retried
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
	}))
	t.Cleanup(srv.Close)
	s := newStream(t, 2)
	cfg := s.config()
	cfg.MaximumRetryAttempts = Int(0)
	cfg.OnFailure = NewHTTPDestination(srv.Client(), srv.URL)
	got := run(s, cfg, failing(s, -1, "r1"))
	expectLog(t, got, "invoke r0,r1", "checkpoint r1")
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || len(bodies) != 1 {
		t.Fatalf("%d calls, %d records; want 2 and 1", calls, len(bodies))
	}
	expectDelivered(t, s, bodies[0])
}

func TestOnFailureToKinesis(t *testing.T) {
	s := newStream(t, 2)
	if _, err := s.client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String("failures"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if err := servertest.WaitActive(t.Context(), s.client, "failures"); err != nil {
		t.Fatal(err)
	}
	cfg := s.config()
	cfg.MaximumRetryAttempts = Int(0)
	cfg.OnFailure = NewKinesisDestination(s.client, "failures")
	got := run(s, cfg, failing(s, -1, "r0"))
	expectLog(t, got, "invoke r0,r1", "checkpoint r1")
	it, err := s.client.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("failures"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "TRIM_HORIZON"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.client.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 1 || aws.ToString(out.Records[0].PartitionKey) != "shardId-000000000000" {
		t.Fatalf("%d records in the failure stream, want 1 keyed by the shard id", len(out.Records))
	}
	expectDelivered(t, s, string(out.Records[0].Data))
}
