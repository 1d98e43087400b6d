package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/peers"
)

// putBatch puts n JSON lines, keys u0…u4, numbered from first, through
// `ksp put --key-field user_id` (aggregated).
func putBatch(t *testing.T, stream string, first, n int) {
	t.Helper()
	var lines []string
	for i := first; i < first+n; i++ {
		lines = append(lines, fmt.Sprintf(`{"user_id":"u%d","n":%d}`, i%5, i))
	}
	out := mustRun(t, "put", stream, writeLines(t, lines...), "--key-field", "user_id")
	if !strings.Contains(out, fmt.Sprintf("put %d records", n)) {
		t.Fatalf("put: %s", out)
	}
}

// tailJSON runs ksp tail with --output json and returns the records.
func tailJSON(t *testing.T, args ...string) []tailRecord {
	t.Helper()
	// --until-idle bounds the test if records are missing.
	out := mustRun(t, append([]string{"tail", "--output", "json", "--poll", "10ms", "--until-idle", "5s"}, args...)...)
	var recs []tailRecord
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r tailRecord
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("tail printed a line that is not JSON: %v\n%s", err, out)
		}
		recs = append(recs, r)
	}
	return recs
}

// checkInOrder checks that recs hold records 0…n-1 exactly once, each key's
// in put order, and returns how many came out of aggregates
// (sub-sequence > 0).
func checkInOrder(t *testing.T, recs []tailRecord, n int) (aggregated int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("tail printed %d records; want %d", len(recs), n)
	}
	last := map[string]int{}
	seen := map[int]bool{}
	for _, r := range recs {
		var v struct {
			UserID string `json:"user_id"`
			N      int    `json:"n"`
		}
		if err := json.Unmarshal([]byte(r.Data), &v); err != nil {
			t.Fatalf("record data %q: %v", r.Data, err)
		}
		if r.PartitionKey != v.UserID {
			t.Fatalf("record %d has partition key %q; want %q", v.N, r.PartitionKey, v.UserID)
		}
		if prev, ok := last[v.UserID]; ok && v.N <= prev {
			t.Fatalf("key %s: record %d after %d (shard %s)", v.UserID, v.N, prev, r.Shard)
		}
		if seen[v.N] {
			t.Fatalf("record %d printed twice", v.N)
		}
		last[v.UserID], seen[v.N] = v.N, true
		if r.SubSequence > 0 {
			aggregated++
		}
	}
	return aggregated
}

// TestTailFollowsSplitThenMerge: records put before a split, between the
// split and a merge, and after the merge come out of tail once each, each
// key's in put order (parents before children), taken out of the
// producer's aggregates, from trim-horizon and --since alike.
func TestTailFollowsSplitThenMerge(t *testing.T) {
	startServer(t)
	mustRun(t, "stream", "create", "t", "--shards", "1")
	putBatch(t, "t", 0, 30)
	mustRun(t, "stream", "split", "t", "shardId-000000000000")
	putBatch(t, "t", 30, 30)
	mustRun(t, "stream", "merge", "t", "shardId-000000000001", "shardId-000000000002")
	putBatch(t, "t", 60, 30)

	recs := tailJSON(t, "t", "--from", "trim-horizon", "--count", "90")
	if agg := checkInOrder(t, recs, 90); agg == 0 {
		t.Fatal("no record came out of an aggregate: the producer did not aggregate, or tail did not deaggregate")
	}
	shards := map[string]bool{}
	for _, r := range recs {
		shards[r.Shard] = true
	}
	for _, s := range []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003"} {
		if !shards[s] {
			t.Errorf("no record read from %s; read from %v", s, shards)
		}
	}
	if recs[0].Shard != "shardId-000000000000" || recs[89].Shard != "shardId-000000000003" {
		t.Errorf("first record from %s, last from %s; want the first parent and the merged child", recs[0].Shard, recs[89].Shard)
	}

	checkInOrder(t, tailJSON(t, "t", "--since", "10m", "--count", "90"), 90)
	if recs := tailJSON(t, "t", "--since", "10m", "--count", "5"); len(recs) != 5 {
		t.Fatalf("--count 5 printed %d records", len(recs))
	}
	var got []string
	for _, r := range tailJSON(t, "t", "--from", "trim-horizon", "--key", "u3", "--grep", `"n":[0-9]*8\b`, "--count", "3") {
		got = append(got, r.Data)
	}
	if want := `{"user_id":"u3","n":8} {"user_id":"u3","n":18} {"user_id":"u3","n":28}`; strings.Join(got, " ") != want {
		t.Fatalf("--key u3 --grep: %q; want %q", got, want)
	}
	out := mustRun(t, "tail", "t", "--from", "trim-horizon", "--count", "2", "--format", "{{.PartitionKey}} {{.Data}}", "--until-idle", "5s")
	if out != "u0 {\"user_id\":\"u0\",\"n\":0}\nu1 {\"user_id\":\"u1\",\"n\":1}\n" {
		t.Fatalf("--format: %q", out)
	}
}

// TestTailLatestSeesNewRecords: from LATEST, tail prints records put after
// it started and none from before.
func TestTailLatestSeesNewRecords(t *testing.T) {
	startServer(t)
	mustRun(t, "stream", "create", "l", "--shards", "2")
	putBatch(t, "l", 0, 10) // before tail: never printed
	var out, errOut bytes.Buffer
	var wg sync.WaitGroup
	done := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- Run(context.Background(), []string{"tail", "l", "--count", "3", "--poll", "10ms", "--until-idle", "20s", "--output", "raw"}, &out, &errOut)
	}()
	// Tail has no signal for "iterators taken"; put until it has seen three.
	var code int
	for i := 100; ; i++ {
		select {
		case code = <-done:
		case <-time.After(50 * time.Millisecond):
			if i > 500 {
				t.Fatal("tail did not stop after 400 records")
			}
			mustRun(t, "put", "l", "--key", "k", writeLines(t, fmt.Sprintf(`{"n":%d}`, i)))
			continue
		}
		break
	}
	wg.Wait()
	if code != 0 {
		t.Fatalf("tail: exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("tail printed %d lines; want 3: %q", len(lines), out.String())
	}
	for _, l := range lines {
		var v struct{ N int }
		if json.Unmarshal([]byte(l), &v); v.N < 100 {
			t.Fatalf("tail from LATEST printed %q, put before it started", l)
		}
	}
}

func TestTailBadInput(t *testing.T) {
	startServer(t)
	mustRun(t, "stream", "create", "b", "--shards", "1")
	checkBadInput(t, []badInput{
		{[]string{"tail"}, 2, "want 1 argument"},
		{[]string{"tail", "b", "--from", "yesterday"}, 2, "--from \"yesterday\""},
		{[]string{"tail", "b", "--from", "0123"}, 1, `invalid sequence number "0123"`},
		{[]string{"tail", "b", "--from", "49590338271490256608559692538361571095921575989136588898"}, 1, "--shard"},
		{[]string{"tail", "b", "--from", "1", "--shard", "shardId-000000000000"}, 1, "InvalidArgumentException"},
		{[]string{"tail", "b", "--shard", "shardId-000000000009"}, 1, "no shard shardId-000000000009"},
		{[]string{"tail", "nope"}, 1, "ResourceNotFoundException"},
		{[]string{"tail", "b", "--output", "xml"}, 2, "raw or json"},
		{[]string{"tail", "b", "--grep", "("}, 2, "--grep"},
	})
}

// TestPutTailKinesalite: put and tail against kinesalite, a server ksp did
// not write, so they use only the public API.
func TestPutTailKinesalite(t *testing.T) {
	p := peers.StartT(t, peers.Kinesalite, peers.Options{})
	t.Setenv("KSP_ENDPOINT", p.URL)
	mustRun(t, "stream", "create", "k", "--shards", "2")
	putBatch(t, "k", 0, 40)
	recs := tailJSON(t, "k", "--from", "trim-horizon", "--count", "40")
	if agg := checkInOrder(t, recs, 40); agg == 0 {
		t.Fatal("no record came out of an aggregate")
	}
}
