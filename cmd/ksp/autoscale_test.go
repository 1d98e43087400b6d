package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAutoscaleCLI makes three decisions on an idle stream of the embedded
// server, measured by its /ksp/metrics: one line each, all holds (the first
// two still measuring, the third within the target).
func TestAutoscaleCLI(t *testing.T) {
	startServer(t)
	mustRun(t, "stream", "create", "idle", "--shards", "2")
	out := mustRun(t, "autoscale", "idle", "--interval", "50ms", "--window", "100ms", "--quiet-period", "10s", "--decisions", "3", "--dry-run")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines; want 3 decisions:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.Contains(l, " idle hold (dry run) shards=2 target=2 ") {
			t.Fatalf("decision line %q; want a dry-run hold at 2 shards", l)
		}
	}
	if !strings.Contains(lines[2], `reason="utilization 0% within the target; `) {
		t.Fatalf("third decision %q; want within the target", lines[2])
	}
}

// TestAutoscaleCLIUsage: bad parameters are usage errors naming them.
func TestAutoscaleCLIUsage(t *testing.T) {
	startServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"s", "--target", "2"}, "TargetUtilization 2 must be in (0, 1]"},
		{[]string{"s", "--min-shards", "3", "--max-shards", "2"}, "MinShards 3 and MaxShards 2"},
		{[]string{"s", "--metrics", "prometheus"}, `--metrics "prometheus": want ksp or cloudwatch`},
		{[]string{"s", "--decisions", "-1"}, "--decisions -1 is negative"},
	} {
		code, _, errOut := runKSP(t, append([]string{"autoscale"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("ksp autoscale %s: exit %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

// TestAutoscaleState: the --state file keeps the calls of the last 24
// hours across runs, written whole through a rename.
func TestAutoscaleState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(25 * time.Hour)} {
		if err := saveCalls(path, at); err != nil {
			t.Fatal(err)
		}
	}
	calls, err := loadCalls(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || !calls[0].Equal(t0.Add(25*time.Hour)) {
		t.Fatalf("calls %v; want only the one within 24 hours of the last", calls)
	}
	if calls, err := loadCalls(filepath.Join(t.TempDir(), "missing.json")); err != nil || calls != nil {
		t.Fatalf("a missing state file: %v, %v; want no calls", calls, err)
	}
}
