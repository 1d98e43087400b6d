package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestDemoCommand(t *testing.T) {
	var stdout, stderr strings.Builder
	code := Run(context.Background(), []string{"demo", "--records", "500"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("ksp demo: exit %d; stderr %q\n%s", code, stderr.String(), stdout.String())
	}
	if want := "OK: all 500 records consumed exactly once, in per-key order"; !strings.Contains(stdout.String(), want) {
		t.Errorf("ksp demo output lacks %q:\n%s", want, stdout.String())
	}
	// Not a terminal: progress comes as plain lines, one a second over the
	// demo's 3 s of puts.
	if out := stdout.String(); !strings.Contains(out, "s  produced ") || strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("ksp demo to a pipe: want plain progress lines, no carriage returns or escapes:\n%q", out)
	}
}

func TestDemoFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--limits", "maybe"}, {"--records", "0"}, {"--timeout", "0s"}} {
		if code := Run(context.Background(), append([]string{"demo"}, args...), io.Discard, io.Discard); code != 2 {
			t.Errorf("ksp demo %v: exit %d, want 2", args, code)
		}
	}
}
