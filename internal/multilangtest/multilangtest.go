// Package multilangtest holds what the tests of `ksp kcl` share: the record
// processors in multilang/testdata (one on the aws-kcl npm package, one in
// Python's standard library), the file they append each processed record
// to, and a KPL-aggregating put of test records.
package multilangtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/producer"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
}

// Record is one record a test processor processed.
type Record struct {
	Shard   string `json:"shard"`
	Seq     string `json:"seq"`
	Sub     int64  `json:"sub"`
	PK      string `json:"pk"`
	Data    string `json:"data"`
	PID     int    `json:"pid"`
	Arrival int64  `json:"arrival"`
}

// Languages are the processors' languages.
var Languages = []string{"node", "python"}

// Processor returns the command line of the test processor in lang and the
// environment it needs; it skips the test (fails it in CI) when the
// language's runtime or aws-kcl is missing.
func Processor(t TB, lang string) (argv, env []string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "multilang", "testdata")
	switch lang {
	case "node":
		if _, err := exec.LookPath("node"); err != nil {
			peers.Unavailable(t, err)
		}
		if err := peers.Install(context.Background()); err != nil {
			peers.Unavailable(t, err)
		}
		modules := filepath.Join(peers.NPMDir(), "node_modules")
		if _, err := os.Stat(filepath.Join(modules, "aws-kcl")); err != nil {
			peers.Unavailable(t, err)
		}
		return []string{"node", filepath.Join(dir, "kcl_processor.js")}, []string{"NODE_PATH=" + modules}
	case "python":
		exe, err := python()
		if err != nil {
			peers.Unavailable(t, err)
		}
		return []string{exe, filepath.Join(dir, "kcl_processor.py")}, nil
	}
	t.Fatalf("no test processor in %q", lang)
	return nil, nil
}

// python finds the interpreter itself, once: not a version manager's shim
// (pyenv's takes a second to start on a busy machine).
var python = sync.OnceValues(func() (string, error) { return peers.LookPath("python3") })

// ReadOut reads the records processed so far from the processors' file.
func ReadOut(t TB, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading processed records: %v", err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line being appended right now
		}
		out = append(out, r)
	}
	return out
}

// WaitAll polls the processors' file until every one of want was
// processed, failing after limit with what is missing.
func WaitAll(t TB, path string, want []string, limit time.Duration) []Record {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := ReadOut(t, path)
		seen := map[string]bool{}
		for _, r := range got {
			seen[r.Data] = true
		}
		var missing []string
		for _, w := range want {
			if !seen[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			if len(missing) > 10 {
				missing = append(missing[:10], "…")
			}
			t.Fatalf("after %v, %d of %d records not processed: %s", limit, len(missing), len(want), strings.Join(missing, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Put puts n user records named prefix-0 … prefix-(n-1) through the ksp
// producer with KPL aggregation on, spread over keys partition keys, and
// returns their data. Each flush ends in aggregates of several records per
// shard, so checkpoints land on sub-sequence numbers.
func Put(t TB, client *kinesis.Client, stream, prefix string, n, keys int) []string {
	t.Helper()
	ctx := context.Background()
	p, err := producer.New(client, stream, producer.Aggregation(true), producer.MaxBufferedTime(time.Hour))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	var pending []*producer.Pending
	var data []string
	for i := range n {
		d := fmt.Sprintf("%s-%d", prefix, i)
		pd, err := p.Put(ctx, producer.Record{PartitionKey: fmt.Sprintf("key-%d", i%keys), Data: []byte(d)})
		if err != nil {
			t.Fatalf("put %s: %v", d, err)
		}
		pending = append(pending, pd)
		data = append(data, d)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer Close: %v", err)
	}
	for _, pd := range pending {
		if r, ok := pd.Result(); !ok || r.Err != nil {
			t.Fatalf("put failed: %+v", r)
		}
	}
	return data
}

// Properties is a properties file for the test processor.
func Properties(argv []string, stream, app, endpoint string, extra ...string) string {
	lines := []string{
		"# written by the ksp kcl tests",
		"executableName = " + strings.Join(argv, " "),
		"streamName = " + stream,
		"applicationName = " + app,
		"initialPositionInStream = TRIM_HORIZON",
		"regionName = us-east-1",
		"kinesisEndpoint = " + endpoint,
		"AWSCredentialsProvider = DefaultCredentialsProvider",
		"idleTimeBetweenReadsInMillis = 20",
		"shardSyncIntervalMillis = 200",
		"failoverTimeMillis = 2000",
		"processingLanguage = test",
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}
