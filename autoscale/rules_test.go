package autoscale

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestRules checks each of UpdateShardCount's limits on its own: what it
// lets through, how it narrows a target, and when it refuses a call.
func TestRules(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hourly := func(n int) []time.Time {
		var out []time.Time
		for i := range n {
			out = append(out, t0.Add(time.Duration(i)*time.Hour))
		}
		return out
	}
	small := Rules{CallsPer24h: 10, MaxShardsPerStream: 100}
	for _, tc := range []struct {
		rule    string
		rules   Rules
		p       proposal
		want    int
		refused string // a part of the reason, "" when allowed
	}{
		{"at most double", DefaultRules(), proposal{current: 3, target: 10}, 6, ""},
		{"at most double", DefaultRules(), proposal{current: 3, target: 6}, 6, ""},
		{"at least half", DefaultRules(), proposal{current: 9, target: 1}, 5, ""},
		{"at least half", DefaultRules(), proposal{current: 1, target: 1}, 1, ""},
		{"max shards per stream", small, proposal{current: 80, target: 150}, 100, ""},
		{"max shards per stream", small, proposal{current: 100, target: 150}, 100, ""},
		{"max shards per stream", DefaultRules(), proposal{current: 6000, target: 12000}, 10000, ""},
		{"scale down from above the max", small, proposal{current: 150, target: 120}, 150, "may only scale down to fewer than 100"},
		{"scale down from above the max", small, proposal{current: 150, target: 100}, 150, "may only scale down to fewer than 100"},
		{"scale down from above the max", small, proposal{current: 150, target: 90}, 90, ""},
		{"account shard quota", DefaultRules(), proposal{current: 10, target: 20, accountOpen: 480, accountLimit: 500}, 20, ""},
		{"account shard quota", DefaultRules(), proposal{current: 10, target: 20, accountOpen: 495, accountLimit: 500}, 15, ""},
		{"account shard quota", DefaultRules(), proposal{current: 10, target: 20, accountOpen: 500, accountLimit: 500}, 10, ""},
		{"account shard quota", DefaultRules(), proposal{current: 10, target: 5, accountOpen: 600, accountLimit: 500}, 5, ""},
		{"10 calls per second", DefaultRules(), proposal{current: 2, target: 4, calls: hourly(1), now: t0.Add(50 * time.Millisecond)}, 2, "the last call was 50ms ago"},
		{"10 calls per second", DefaultRules(), proposal{current: 2, target: 4, calls: hourly(1), now: t0.Add(100 * time.Millisecond)}, 4, ""},
		{"calls per rolling 24 hours", DefaultRules(), proposal{current: 2, target: 4, calls: hourly(9), now: t0.Add(10 * time.Hour)}, 4, ""},
		{"calls per rolling 24 hours", DefaultRules(), proposal{current: 2, target: 4, calls: hourly(10), now: t0.Add(10 * time.Hour)},
			2, "10 UpdateShardCount calls in the last 24 hours, 10 allowed; the next is allowed at 2026-01-02T00:00:00Z"},
		{"calls per rolling 24 hours", DefaultRules(), proposal{current: 2, target: 4, calls: hourly(10), now: t0.Add(24 * time.Hour)}, 4, ""},
		{"calls per rolling 24 hours", Rules{CallsPer24h: 2, MaxShardsPerStream: 10}, proposal{current: 2, target: 1, calls: hourly(10), now: t0.Add(30 * time.Hour)},
			2, "3 UpdateShardCount calls in the last 24 hours, 2 allowed; the next is allowed at 2026-01-02T08:00:00Z"},
	} {
		got, refused := tc.rules.limit(tc.p)
		if got != tc.want || (tc.refused == "") != (refused == "") || !strings.Contains(refused, tc.refused) {
			t.Errorf("%s: %d → %d: got %d, refused %q; want %d, refused containing %q", tc.rule, tc.p.current, tc.p.target, got, refused, tc.want, tc.refused)
		}
		if tc.refused != "" && !strings.HasPrefix(refused, tc.rule+": ") {
			t.Errorf("%s: the refusal %q does not name its rule", tc.rule, refused)
		}
	}
}

// TestRulesAllCovered keeps TestRules complete: every rule has a case.
func TestRulesAllCovered(t *testing.T) {
	src, err := os.ReadFile("rules_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !strings.Contains(string(src), "{\""+r.name+"\", ") {
			t.Errorf("rule %q has no case in TestRules", r.name)
		}
	}
}
