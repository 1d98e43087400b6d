package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/esm"
	"github.com/ksp-project/ksp/internal/peers"
)

// startPowertools runs testdata/powertools/invoke_server.js (a Powertools
// batch handler behind a Lambda Invoke API) and returns its invoke URL.
func startPowertools(t *testing.T) string {
	t.Helper()
	if err := peers.Install(t.Context()); err != nil {
		peers.Unavailable(t, err)
	}
	cmd := exec.Command("node", filepath.Join("testdata", "powertools", "invoke_server.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(peers.NPMDir(), "node_modules"))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		peers.Unavailable(t, err)
	}
	t.Cleanup(func() {
		stdin.Close()                                                         // the server exits at the end of its stdin
		kill := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() }) // or is made to
		defer kill.Stop()
		if err := cmd.Wait(); err != nil {
			t.Errorf("invoke server: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("invoke server said %q (%v); want listening PORT", line, err)
	}
	return "http://127.0.0.1:" + port + "/2015-03-31/functions/powertools/invocations"
}

// TestESMCommandPowertoolsPartialFailures drives a Node.js handler built on
// Powertools' BatchProcessor, which fails r1 once and r4 always: each
// partial response checkpoints before the lowest failed record and retries
// from it, spending one retry; with retries exhausted the rest of the batch
// goes to the on-failure destination, as Lambda does.
func TestESMCommandPowertoolsPartialFailures(t *testing.T) {
	url := startPowertools(t)
	seqs := esmStream(t, "pt", 6)
	failures := filepath.Join(t.TempDir(), "failures.jsonl")
	out := mustRun(t, "esm", "--stream", "pt", "--function-url", url, "--batch-size", "3",
		"--function-response-types", "ReportBatchItemFailures", "--maximum-retry-attempts", "1",
		"--on-failure", "file:"+failures, "--poll", "10ms", "--count", "6", "--until-idle", "20s")
	sh := "shardId-000000000000"
	want := []string{
		sh + " records=3 result=PartialFailure retries=1 checkpoint=" + seqs[0], // r0 r1 r2: r1 failed
		sh + " records=2 result=Succeeded retries=1 checkpoint=" + seqs[2],      // r1 r2
		sh + " records=3 result=PartialFailure retries=1 checkpoint=" + seqs[3], // r3 r4 r5: r4 failed
		sh + " records=2 result=PartialFailure retries=2 checkpoint=-",          // r4 r5: r4 again
		sh + " records=2 result=RetryAttemptsExhausted retries=2 checkpoint=" + seqs[5],
		"esm: 4 invokes, 3 failed; 6 records settled, 2 given up",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
	data, err := os.ReadFile(failures)
	if err != nil {
		t.Fatal(err)
	}
	var rec esm.InvocationRecord
	if err := json.Unmarshal(data, &rec); err != nil || strings.Count(string(data), "\n") != 1 {
		t.Fatalf("on-failure file %q (%v); want one invocation record", data, err)
	}
	b := rec.KinesisBatchInfo
	// A partial response is not a function error: no functionError.
	if rec.RequestContext.Condition != esm.RetryAttemptsExhausted || rec.RequestContext.ApproximateInvokeCount != 2 ||
		rec.ResponseContext.FunctionError != "" || b.StartSequenceNumber != seqs[4] || b.EndSequenceNumber != seqs[5] || b.BatchSize != 2 {
		t.Fatalf("invocation record %+v; want r4…r5 given up after 2 invokes", rec)
	}
}
