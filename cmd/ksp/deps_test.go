package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBinaryDoesNotLinkTesting: the ksp binary must not link package
// testing (test helpers it would bring in, and a larger binary). The
// failure names the packages that import it.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var importers []string
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if imp == "testing" {
				importers = append(importers, fields[0])
			}
		}
	}
	if len(importers) > 0 {
		t.Fatalf("the ksp binary links package testing, imported by %v", importers)
	}
}
