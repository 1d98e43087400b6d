package bench

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/peers"
)

// TestRunConsumeMultiLangSmall runs the multilang part alone on a few
// records: both sides drain everything and the table names both.
func TestRunConsumeMultiLangSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns node processes")
	}
	if _, err := exec.LookPath("node"); err != nil {
		peers.Unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := RunConsume(ctx, ConsumeConfig{MultiLang: true, MultiLangRecords: 300, Shards: 2, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, &progress)
	}
	if len(rep.Drains) != 0 || rep.Latency != nil || rep.Failover != nil {
		t.Fatalf("--multilang alone ran other parts: %+v", rep)
	}
	m := rep.MultiLang
	if m == nil || m.Records != 300 || m.Go.PerSecond <= 0 || m.Node.PerSecond <= 0 || m.Ratio <= 0 {
		t.Fatalf("multilang result %+v", m)
	}
	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "Node.js (aws-kcl over ksp kcl)") {
		t.Fatalf("table:\n%s", table.String())
	}
}
