package leaseview

import (
	"strings"
	"testing"
	"time"
)

// TestRenewalsSeen: RENEWED says nothing after one look, then when this
// process saw each counter move, or for how long it stood still.
func TestRenewalsSeen(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	rows := func(a, b int64) []Row {
		return []Row{{LeaseKey: "a", Shard: "a", Counter: a}, {LeaseKey: "b", Shard: "b", Counter: b}}
	}
	var r Renewals
	look := func(at time.Time, rs []Row) []string {
		r.Observe(rs, at)
		var got []string
		for _, row := range rs {
			got = append(got, r.seenText(row))
		}
		return got
	}
	if got := look(t0, rows(1, 1)); strings.Join(got, "|") != "-|-" {
		t.Fatalf("first look: %q", got)
	}
	if got := look(t0.Add(2*time.Second), rows(2, 1)); strings.Join(got, "|") != "in last 2s|not in 2s" {
		t.Fatalf("second look: %q", got)
	}
	if got := look(t0.Add(5*time.Second), rows(2, 1)); strings.Join(got, "|") != "3s ago|not in 5s" {
		t.Fatalf("third look: %q", got)
	}
	var b strings.Builder
	if err := WriteTable(&b, rows(2, 1), nil); err != nil || !strings.Contains(b.String(), "RENEWED") || strings.Contains(b.String(), "BEHIND") {
		t.Fatalf("a table without lag: %v\n%s", err, b.String())
	}
}

func TestLagString(t *testing.T) {
	for _, tc := range []struct {
		lag  *Lag
		want string
	}{
		{nil, "-"},
		{&Lag{}, "0"},
		{&Lag{Records: 12, OldestAgeMillis: 1520}, "12 rec, 1.5s"},
		{&Lag{Records: 1000, AtLeast: true, OldestAgeMillis: 60000}, "1000+ rec, 1m0s"},
		{&Lag{Unknown: "ProvisionedThroughputExceededException"}, "? (ProvisionedThroughputExceededException)"},
	} {
		if got := tc.lag.String(); got != tc.want {
			t.Errorf("%+v: %q; want %q", tc.lag, got, tc.want)
		}
	}
}

func TestMultiStreamKey(t *testing.T) {
	if got := multiStream("123456789012:orders:1700000000:shardId-000000000001"); got != "orders" {
		t.Fatalf("multi-stream key: %q", got)
	}
	if got := multiStream("shardId-000000000001"); got != "" {
		t.Fatalf("single-stream key: %q", got)
	}
}
