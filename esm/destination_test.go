package esm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestFileDestinationAppendsWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.jsonl")
	if err := os.WriteFile(path, []byte(`{"earlier":true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := NewFileDestination(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			rec := InvocationRecord{Version: "1.0", KinesisBatchInfo: KinesisBatchInfo{ShardID: fmt.Sprint("shardId-", i), BatchSize: i}}
			if err := d.Deliver(t.Context(), rec); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := d.Deliver(t.Context(), InvocationRecord{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Deliver after Close: %v", err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	seen := map[int]bool{}
	lines := 0
	for sc.Scan() {
		if lines++; lines == 1 {
			if sc.Text() != `{"earlier":true}` {
				t.Fatalf("the existing line was changed: %s", sc.Text())
			}
			continue
		}
		var rec InvocationRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v: %s", lines, err, sc.Text())
		}
		if rec.KinesisBatchInfo.ShardID != fmt.Sprint("shardId-", rec.KinesisBatchInfo.BatchSize) {
			t.Fatalf("line %d mixes records: %s", lines, sc.Text())
		}
		seen[rec.KinesisBatchInfo.BatchSize] = true
	}
	if lines != 21 || len(seen) != 20 {
		t.Fatalf("%d lines, %d distinct records; want 21 and 20", lines, len(seen))
	}
}

func TestFileDestinationOpenFails(t *testing.T) {
	_, err := NewFileDestination(filepath.Join(t.TempDir(), "missing", "dlq.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "dlq.jsonl") {
		t.Fatalf("got %v", err)
	}
}
