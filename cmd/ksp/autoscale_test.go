package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAutoscaleCLI makes decisions on an idle stream of the embedded
// server, measured by its /ksp/metrics: one line each, all holds, first
// still measuring over the window, then within the target. Twenty decisions
// 50 ms apart take at least a second, ten windows: how many of them fall
// inside the first window depends on the machine, so only the order is
// checked.
func TestAutoscaleCLI(t *testing.T) {
	startServer(t)
	mustRun(t, "stream", "create", "idle", "--shards", "2")
	const decisions = 20
	out := mustRun(t, "autoscale", "idle", "--interval", "50ms", "--window", "100ms", "--quiet-period", "10s", "--decisions", "20", "--dry-run")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != decisions {
		t.Fatalf("%d lines; want %d decisions:\n%s", len(lines), decisions, out)
	}
	within := -1
	for i, l := range lines {
		if !strings.Contains(l, " idle hold (dry run) shards=2 target=2 ") {
			t.Fatalf("decision line %q; want a dry-run hold at 2 shards", l)
		}
		switch {
		case strings.Contains(l, `reason="utilization 0% within the target; `):
			if within < 0 {
				within = i
			}
		case strings.Contains(l, `reason="measuring: `):
			if within >= 0 {
				t.Fatalf("decision %d %q is measuring again after decision %d was within the target", i, l, within)
			}
		default:
			t.Fatalf("decision %d %q: want measuring or within the target", i, l)
		}
	}
	if within < 0 {
		t.Fatalf("no decision within the target after %d decisions over a 100 ms window:\n%s", decisions, out)
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
