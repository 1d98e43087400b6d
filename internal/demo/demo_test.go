package demo

import (
	"context"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	err := Run(context.Background(), Config{Records: 2000, ProduceOver: -1, Progress: -1}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"produced   2000 of 2000 (0 failed",
		"consumed   2000 unique, 0 duplicates, 0 missing",
		"per-key order verified for 100 customers",
		"OK: all 2000 records consumed exactly once, in per-key order",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDemoConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{Records: -1}, {Customers: -1}, {Shards: 501}, {Timeout: -1}} {
		if err := Run(context.Background(), cfg, &strings.Builder{}); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", cfg)
		}
	}
}
