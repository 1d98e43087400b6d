package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/peers"
)

func TestRunServerSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := RunServer(ctx, ServerConfig{
		Targets: []string{TargetKSP, TargetKinesalite}, Records: 2000, PeerRecords: 2000, PeerTime: time.Second,
		Shards: 3, Clients: 4, Batch: 100, Rounds: 2, Progress: &progress,
	})
	var pe *PeerError
	if errors.As(err, &pe) {
		peers.Unavailable(t, err)
	}
	if err != nil {
		t.Fatalf("RunServer: %v\nprogress:\n%s", err, &progress)
	}
	k, kl := rep.Result(TargetKSP), rep.Result(TargetKinesalite)
	if k == nil || kl == nil {
		t.Fatalf("results %+v", rep.Results)
	}
	if k.Rounds != 2 || kl.Rounds != 2 {
		t.Fatalf("ran %d and %d rounds, want 2", k.Rounds, kl.Rounds)
	}
	if k.Records != 2000 || k.Put.Records != 2000 || k.Drain.Records != 2000 {
		t.Fatalf("ksp put %d and read %d records, want 2000", k.Put.Records, k.Drain.Records)
	}
	// Each round reads back exactly what it put (RunServer fails otherwise);
	// kinesalite's puts are time-bounded, so its best put and best drain may
	// come from rounds of different sizes.
	if kl.Records < 1 || kl.Drain.Records < 1 {
		t.Fatalf("kinesalite put %d and read %d records", kl.Put.Records, kl.Drain.Records)
	}
	if k.Put.Retried+k.Put.FailedCall+k.Drain.FailedCall != 0 {
		t.Fatalf("ksp with limits off had failures: put %+v drain %+v", k.Put, k.Drain)
	}
	if k.Memory.Heap <= 0 || !k.Memory.InProcess || kl.Memory.PeakRSS <= 0 {
		t.Fatalf("memory not measured: ksp %+v kinesalite %+v", k.Memory, kl.Memory)
	}
	if len(rep.Goals) != 2 {
		t.Fatalf("goals %+v", rep.Goals)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	out := table.String()
	for _, want := range []string{"put rec/s", "drain rec/s", "\nksp ", "\nkinesalite ", "CPUs", rep.GoVersion, "put ≥ 15×", "drain ≥ 20×"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil || !strings.Contains(js.String(), `"records_per_second"`) {
		t.Fatalf("JSON report (%v):\n%s", err, &js)
	}
}

func TestServerConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{}, ""},
		{ServerConfig{Targets: []string{"dynalite"}}, `unknown target "dynalite"`},
		{ServerConfig{Targets: []string{"ksp", "ksp"}}, "given twice"},
		{ServerConfig{Batch: 501}, "batch must be in 1..500"},
		{ServerConfig{Size: 4}, "size must be in 8..1048576"},
		{ServerConfig{Records: -1}, "records must be at least 1"},
		{ServerConfig{Rounds: -1}, "rounds must be at least 1"},
		{ServerConfig{Batch: 500, Size: 20000}, "exceeds the 5 MiB"},
		{ServerConfig{Transports: []string{"h3"}}, `unknown transport "h3"`},
		{ServerConfig{Transports: []string{"h2c", "h2c"}}, "given twice"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// BenchmarkKSP runs the ksp part of `ksp bench server` (100000 records a
// round) and reports the mean rates; use it with -cpuprofile to find the
// server's hot spots (the profile holds the SDK clients too).
func BenchmarkKSP(b *testing.B) {
	var put, drain float64
	rounds := 0
	for b.Loop() {
		rep, err := RunServer(context.Background(), ServerConfig{Targets: []string{TargetKSP}, Records: 100000})
		if err != nil {
			b.Fatal(err)
		}
		k := rep.Result(TargetKSP)
		put += k.Put.PerSecond
		drain += k.Drain.PerSecond
		rounds++
	}
	b.ReportMetric(put/float64(rounds), "put-rec/s")
	b.ReportMetric(drain/float64(rounds), "drain-rec/s")
}

// TestNullCeiling measures ksp and the null target over both transports:
// every record is read back, and ksp's rates are given as shares of the
// null target's.
func TestNullCeiling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := RunServer(ctx, ServerConfig{
		Targets: []string{TargetNull, TargetKSP}, Transports: []string{TransportHTTP1, TransportH2C},
		Records: 3000, Shards: 3, Clients: 4, Batch: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"null", "null/h2c", "ksp", "ksp/h2c"} {
		res := rep.Result(name)
		if res == nil {
			t.Fatalf("no result for %s in %+v", name, rep.Results)
		}
		if res.Put.Records != 3000 || res.Drain.Records != 3000 {
			t.Errorf("%s put %d and drained %d records, want 3000", name, res.Put.Records, res.Drain.Records)
		}
		isKSP := strings.HasPrefix(name, "ksp")
		if isKSP != (res.PutCeiling > 0 && res.DrainCeiling > 0) {
			t.Errorf("%s: ceiling shares %v/%v", name, res.PutCeiling, res.DrainCeiling)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "%ceil") || !strings.Contains(table.String(), "\nksp/h2c ") {
		t.Errorf("table:\n%s", &table)
	}
}
