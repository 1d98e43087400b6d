package aggregation

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/peers"
)

// The interop tests run awslabs' aws-kinesis-agg (pinned in
// internal/peers/npm) through testdata/kinesis_agg_peer.js.

type peerRecord struct {
	Data              []byte `json:"data"`
	PartitionKey      string `json:"partitionKey"`
	ExplicitHashKey   string `json:"explicitHashKey,omitempty"`
	SequenceNumber    string `json:"sequenceNumber,omitempty"`
	SubSequenceNumber *int64 `json:"subSequenceNumber,omitempty"`
}

type peerRequest struct {
	Op      string       `json:"op"`
	Records []peerRecord `json:"records"`
}

// runNodePeer sends req to the node script and decodes its answer into resp.
func runNodePeer(t *testing.T, req peerRequest, resp any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := peers.Install(ctx); err != nil {
		peers.Unavailable(t, err)
	}
	modules := filepath.Join(peers.NPMDir(), "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "aws-kinesis-agg", "package.json")); err != nil {
		peers.Unavailable(t, err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "kinesis_agg_peer.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", req.Op, err, stderr.Bytes())
	}
	if err := json.Unmarshal(stdout.Bytes(), resp); err != nil {
		t.Fatalf("node %s answered %q: %v", req.Op, stdout.Bytes(), err)
	}
}

// TestInteropKspToNode: containers ksp builds decode in aws-kinesis-agg with
// the same keys, hash keys and data.
func TestInteropKspToNode(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	shapes := [][]userRec{
		{{pk: "solo", data: []byte("raw single record")}},
		{{pk: "k1", data: []byte("a")}, {pk: "k2", ehk: "7", data: []byte{}}, {pk: "k1", ehk: maxHashKey, data: []byte{0, 1, 2}}},
		{{pk: "ключ", ehk: "0", data: []byte("unicode")}, {pk: "🙂", data: []byte("emoji")}},
		randomRecords(r, 40),
		randomRecords(r, 400),
	}
	var (
		req   = peerRequest{Op: "deaggregate"}
		sent  [][]userRec
		built []Container
	)
	a := newAggregator(t) // default 51200 limit: the large shapes span containers
	flush := func(recs []userRec) {
		c := a.Build(nil)
		built = append(built, c)
		sent = append(sent, recs)
		req.Records = append(req.Records, peerRecord{Data: c.Data, PartitionKey: c.PartitionKey, SequenceNumber: strconv.Itoa(len(built))})
	}
	for _, shape := range shapes {
		var pending []userRec
		for _, u := range shape {
			err := a.Add(u.pk, u.ehk, u.data)
			if err == ErrFull {
				flush(pending)
				pending = nil
				err = a.Add(u.pk, u.ehk, u.data)
			}
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, u)
		}
		flush(pending)
	}

	var resp struct{ Records [][]peerRecord }
	runNodePeer(t, req, &resp)
	if len(resp.Records) != len(sent) {
		t.Fatalf("node answered for %d records, sent %d", len(resp.Records), len(sent))
	}
	for i, got := range resp.Records {
		want := sent[i]
		if len(want) == 1 {
			// Raw: node passes it through with the outer key.
			if len(got) != 1 || got[0].PartitionKey != want[0].pk || !bytes.Equal(got[0].Data, want[0].data) || got[0].SubSequenceNumber != nil {
				t.Fatalf("container %d (raw): node read %+v", i, got)
			}
			continue
		}
		if len(got) != len(want) {
			t.Fatalf("container %d: node read %d records, want %d", i, len(got), len(want))
		}
		firstEHK := ""
		for _, u := range want {
			if u.ehk != "" {
				firstEHK = u.ehk // table entry 0
				break
			}
		}
		for j, g := range got {
			w := want[j]
			// aws-kinesis-agg reads an absent explicit_hash_key_index as
			// proto2's default 0, so it reports table entry 0 for records
			// without a hash key.
			ehkOK := g.ExplicitHashKey == w.ehk || w.ehk == "" && g.ExplicitHashKey == firstEHK
			if g.PartitionKey != w.pk || !ehkOK || !bytes.Equal(g.Data, w.data) || g.SubSequenceNumber == nil || *g.SubSequenceNumber != int64(j) {
				t.Fatalf("container %d record %d: node read %+v, want %q/%q/%x", i, j, g, w.pk, w.ehk, w.data)
			}
		}
	}
	if len(built) < 6 {
		t.Fatalf("only %d containers: the large shapes did not span containers", len(built))
	}
}

// TestInteropNodeToKsp: containers aws-kinesis-agg builds decode in ksp with
// the same keys, hash keys and data, in order.
func TestInteropNodeToKsp(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(13, 14))
	recs := []userRec{{pk: "only", data: []byte("alone")}}
	recs = append(recs, randomRecords(r, 60)...)
	// Over 1 MiB in all, so aws-kinesis-agg splits it into several containers.
	for i := range 12 {
		recs = append(recs, userRec{pk: "big" + strconv.Itoa(i), data: bytes.Repeat([]byte{byte(i)}, 100_000)})
	}
	// aws-kinesis-agg builds its key tables with Object.keys, which lists
	// integer-like keys ("1", "42": below 2^32−1) first, in numeric order,
	// whatever their insertion order, so it pairs records with the wrong
	// keys; its own deaggregate reads them wrong too. Keep such keys out.
	for i := range recs {
		if jsArrayIndex(recs[i].ehk) {
			recs[i].ehk = "1" + strings.Repeat("0", 12) + recs[i].ehk
		}
	}
	batches := [][]userRec{recs[:1], recs[1:]}

	for bi, batch := range batches {
		req := peerRequest{Op: "aggregate"}
		for _, u := range batch {
			req.Records = append(req.Records, peerRecord{PartitionKey: u.pk, ExplicitHashKey: u.ehk, Data: u.data})
		}
		var resp struct{ Containers []peerRecord }
		runNodePeer(t, req, &resp)
		if bi == 1 && len(resp.Containers) < 2 {
			t.Fatalf("node built %d containers from over 1 MiB", len(resp.Containers))
		}
		var got []UserRecord
		for i, c := range resp.Containers {
			n := len(got)
			got = Deaggregate(got, KinesisRecord{Data: c.Data, PartitionKey: c.PartitionKey, SequenceNumber: strconv.Itoa(i)})
			for j, u := range got[n:] {
				// aws-kinesis-agg aggregates even a single record.
				if u.Err != nil || !u.Aggregated || u.SubSequenceNumber != int64(j) || u.SequenceNumber != strconv.Itoa(i) {
					t.Fatalf("batch %d container %d record %d: %+v", bi, i, j, u)
				}
			}
		}
		if len(got) != len(batch) {
			t.Fatalf("batch %d: decoded %d records, node was given %d", bi, len(got), len(batch))
		}
		for i, g := range got {
			w := batch[i]
			if g.PartitionKey != w.pk || g.ExplicitHashKey != w.ehk || !bytes.Equal(g.Data, w.data) {
				t.Fatalf("batch %d record %d = %q/%q/%x, want %q/%q/%x", bi, i, g.PartitionKey, g.ExplicitHashKey, g.Data, w.pk, w.ehk, w.data)
			}
		}
	}
}

// jsArrayIndex reports whether JavaScript orders s as an array index among an
// object's keys: a canonical decimal below 2^32−1.
func jsArrayIndex(s string) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n < 1<<32-1 && strconv.FormatUint(n, 10) == s
}
