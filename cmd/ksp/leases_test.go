package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// appConsumer is a real consumer worker of an application, run in the
// background until stopped.
type appConsumer struct {
	byShard sync.Map // shard id → *atomic.Int64: records processed
	total   atomic.Int64
	stop    context.CancelFunc
	done    chan error
}

// startConsumer runs a consumer worker of stream on store from TRIM_HORIZON,
// with a failover time of 1 s (renewals every 333 ms).
func startConsumer(t *testing.T, srv *server.Server, stream string, store lease.Store, worker string) *appConsumer {
	t.Helper()
	c := &appConsumer{done: make(chan error, 1)}
	cons, err := consumer.New(
		consumer.WithStream(stream), consumer.WithKinesis(servertest.Client(t, srv)), consumer.WithLeaseStore(store),
		consumer.WithWorkerID(worker), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithFailoverTime(time.Second), consumer.WithIdleTime(10*time.Millisecond),
		consumer.WithShardSyncInterval(50*time.Millisecond),
		consumer.WithHandler(c.handle),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go func() { c.done <- cons.Run(ctx) }()
	t.Cleanup(c.close)
	return c
}

// handle counts records; the consumer checkpoints each batch after it.
func (c *appConsumer) handle(_ context.Context, recs []consumer.Record) error {
	for _, r := range recs {
		n, _ := c.byShard.LoadOrStore(r.ShardID, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	c.total.Add(int64(len(recs)))
	return nil
}

// waitFor polls cond (bounded) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1500 { // 30 s at most: a bound for a hang
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// close stops the worker gracefully: it checkpoints and releases its leases.
func (c *appConsumer) close() {
	if c.stop != nil {
		c.stop()
		<-c.done
		c.stop = nil
	}
}

func (c *appConsumer) shard(id string) int64 {
	if n, ok := c.byShard.Load(id); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// putPlain puts n unaggregated records with key k, so each is one Kinesis
// record.
func putPlain(t *testing.T, stream string, n int) {
	t.Helper()
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
	}
	mustRun(t, "put", stream, writeLines(t, lines...), "--aggregate=false")
}

// leasesJSONOf runs ksp leases --json and decodes it.
func leasesJSONOf(t *testing.T, args ...string) map[string]leaseRowJSON {
	t.Helper()
	var doc struct {
		Leases []leaseRowJSON `json:"leases"`
	}
	out := mustRun(t, append([]string{"leases", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("leases --json: %v\n%s", err, out)
	}
	rows := map[string]leaseRowJSON{}
	for _, r := range doc.Leases {
		rows[r.Shard] = r
	}
	return rows
}

type leaseRowJSON struct {
	Shard       string `json:"shardId"`
	Owner       string `json:"owner"`
	Checkpoint  string `json:"checkpoint"`
	SubSequence int64  `json:"subSequenceNumber"`
	Counter     int64  `json:"leaseCounter"`
	Lag         *struct {
		Records int    `json:"records"`
		Unknown string `json:"unknown"`
	} `json:"lag"`
}

func sumLag(t *testing.T, rows map[string]leaseRowJSON) int {
	t.Helper()
	n := 0
	for _, r := range rows {
		if r.Lag == nil || r.Lag.Unknown != "" {
			t.Fatalf("lease %s has no lag: %+v", r.Shard, r.Lag)
		}
		n += r.Lag.Records
	}
	return n
}

// checkLeasesAndReset runs the leases and leases reset checks on a lease
// table written by the real consumer; flags select the table.
func checkLeasesAndReset(t *testing.T, srv *server.Server, store lease.Store, flags ...string) {
	const app, stream = "orders-app", "orders"
	shard0 := "shardId-000000000000"
	mustRun(t, "stream", "create", stream, "--shards", "2")
	putBatch(t, stream, 0, 20) // aggregated: checkpoints carry sub-sequence numbers
	c := startConsumer(t, srv, stream, store, "worker-a")
	waitFor(t, "the consumer to process 20 records", func() bool { return c.total.Load() == 20 })
	c.close()
	firstRun0 := c.shard(shard0)

	base := append([]string{app, "--stream", stream}, flags...)
	rows := leasesJSONOf(t, base...)
	if len(rows) != 2 || rows[shard0].Owner != "" || sumLag(t, rows) != 0 {
		t.Fatalf("after a graceful stop: want 2 released leases, 0 behind: %+v", rows)
	}
	if rows[shard0].SubSequence == 0 && rows["shardId-000000000001"].SubSequence == 0 {
		t.Fatalf("no checkpoint inside an aggregate: the lag of a finished aggregate is not tested: %+v", rows)
	}
	checkpoint0 := rows[shard0].Checkpoint
	putPlain(t, stream, 7)
	if rows = leasesJSONOf(t, base...); sumLag(t, rows) != 7 {
		t.Fatalf("after 7 more records the leases are %d behind; want 7: %+v", sumLag(t, rows), rows)
	}
	table := mustRun(t, append([]string{"leases"}, base...)...)
	for _, want := range []string{"SHARD", "BEHIND", shard0, checkpoint0, "RENEWED"} {
		if !strings.Contains(table, want) {
			t.Fatalf("table lacks %q:\n%s", want, table)
		}
	}

	// No owner: the reset writes at once.
	out := mustRun(t, append([]string{"leases", "reset", "--shard", shard0, "--to", "TRIM_HORIZON"}, base...)...)
	if rows[shard0].SubSequence != 0 {
		checkpoint0 += fmt.Sprintf("/%d", rows[shard0].SubSequence)
	}
	if !strings.Contains(out, checkpoint0+" → TRIM_HORIZON") {
		t.Fatalf("reset: %q", out)
	}
	after := leasesJSONOf(t, base...)
	if got := after[shard0]; got.Checkpoint != "TRIM_HORIZON" || got.Counter != rows[shard0].Counter+3 || got.Owner != "" {
		t.Fatalf("after the reset: %+v; want TRIM_HORIZON, counter %d+3 (take, checkpoint, release), no owner", got, rows[shard0].Counter)
	}
	// The consumer resumes from the reset checkpoint: shard 0 again from the start.
	c = startConsumer(t, srv, stream, store, "worker-b")
	inShard0 := firstRun0 + int64(rows[shard0].Lag.Records) // the aggregated records and the plain ones
	waitFor(t, "the consumer to reprocess shard 0", func() bool { return c.shard(shard0) == inShard0 && sumLag(t, leasesJSONOf(t, base...)) == 0 })

	// A live owner: refused, then forced.
	before := leasesJSONOf(t, base...)[shard0]
	code, _, errOut := runKSP(t, append([]string{"leases", "reset", "--shard", shard0, "--to", "LATEST", "--failover", "2500ms"}, base...)...)
	if code != 1 || !strings.Contains(errOut, "worker-b renewed the lease of shardId-000000000000") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("reset under a live owner: exit %d, %q; want 1 and one line naming worker-b", code, errOut)
	}
	if now := leasesJSONOf(t, base...)[shard0]; now.Checkpoint != before.Checkpoint {
		t.Fatalf("a refused reset changed the checkpoint %s → %s", before.Checkpoint, now.Checkpoint)
	}
	mustRun(t, append([]string{"leases", "reset", "--shard", shard0, "--to", "LATEST", "--force"}, base...)...)
	waitFor(t, "worker-b to take the reset lease back", func() bool {
		r := leasesJSONOf(t, base...)[shard0]
		return r.Owner == "worker-b" && r.Checkpoint == "LATEST"
	})

	// --watch sees worker-b's renewals.
	watch := mustRun(t, append([]string{"leases", "--watch", "--count", "2", "--interval", "1s"}, base...)...)
	if strings.Count(watch, "SHARD") != 2 || !strings.Contains(watch, "in last ") {
		t.Fatalf("--watch --count 2: want two tables, the second with a renewal seen:\n%s", watch)
	}
	jsonWatch := strings.Split(strings.TrimSpace(mustRun(t, append([]string{"leases", "--json", "--watch", "--count", "2", "--interval", "10ms"}, base...)...)), "\n")
	for _, line := range jsonWatch {
		var doc struct{ Leases []leaseRowJSON }
		if err := json.Unmarshal([]byte(line), &doc); err != nil || len(doc.Leases) != 2 {
			t.Fatalf("--json --watch line %q: %v; want one JSON object with 2 leases per line", line, err)
		}
	}
	if len(jsonWatch) != 2 {
		t.Fatalf("--json --watch --count 2 printed %d lines", len(jsonWatch))
	}
	c.close()

	checkBadInput(t, []badInput{
		{append([]string{"leases", "reset", "--shard", shard0, "--to", "0123"}, base...), 1, `invalid sequence number "0123"`},
		{append([]string{"leases", "reset", "--shard", shard0, "--to", "1"}, base...), 1, "InvalidArgumentException"},
		{append([]string{"leases", "reset", "--shard", "shardId-000000000009", "--to", "LATEST"}, base...), 1, "no lease for shard shardId-000000000009"},
		{append([]string{"leases", "reset", "--to", "LATEST"}, base...), 2, "--shard and --to"},
		{append([]string{"leases", "nope-app"}, flags...), 1, "application nope-app has no lease table"},
		{append([]string{"leases", app, "--stream", "nope"}, flags...), 1, "ResourceNotFoundException"},
	})
}

// TestLeasesSQLite: ksp leases and leases reset on a SQLite lease table the
// consumer wrote.
func TestLeasesSQLite(t *testing.T) {
	srv := startServer(t)
	db := filepath.Join(t.TempDir(), "leases.db")
	store, err := sqlite.Open(context.Background(), db, "orders-app")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	checkLeasesAndReset(t, srv, store, "--lease-db", db)
	checkBadInput(t, []badInput{
		{[]string{"leases"}, 2, "want 1 argument"},
		{[]string{"leases", "a", "--colour"}, 2, "unknown flag"},
		{[]string{"leases", "a", "--lease-db", db + ".missing"}, 1, "no such file"},
	})
}

// TestLeasesDynalite: the same on a DynamoDB table (dynalite) in the KCL's
// layout.
func TestLeasesDynalite(t *testing.T) {
	srv := startServer(t)
	p := peers.StartT(t, peers.Dynalite, peers.Options{})
	client := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(p.URL),
		Credentials: credentials.NewStaticCredentialsProvider("ksp", "ksp", ""),
	})
	store, err := dynamo.New(client, "orders-app", dynamo.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	checkLeasesAndReset(t, srv, store, "--dynamodb-endpoint", p.URL)
}
