package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunProduceSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	rep, err := RunProduce(ctx, ProduceConfig{Records: 20000, RawRecords: 2000, Shards: 2, Writers: 2, CPUProfile: profile})
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, r := range rep.Results {
		modes = append(modes, fmt.Sprint(r.Aggregation, " ", r.API))
	}
	if got := strings.Join(modes, ", "); got != "true Put, true PutCallback, false Put, false PutCallback" {
		t.Fatalf("modes %s", got)
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Fatalf("CPU profile: %v, %v", fi, err)
	}
	for _, r := range rep.Results {
		if r.PerSecond <= 0 || r.Requests < 1 || r.BytesPerRequest <= 0 || r.KinesisRecords < 1 ||
			r.CPUPerRecord <= 0 || r.AllocsPerRecord <= 0 {
			t.Fatalf("result %+v", r)
		}
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"user rec/s", "allocs/record", "bytes/request", "goal: ≥ 1,000,000", "CPU/record", "PutCallback"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, &out)
		}
	}
	t.Logf("\n%s", &out)
	if err := (ProduceConfig{Size: 4}).Validate(); err == nil {
		t.Error("size 4 accepted")
	}
}

// BenchmarkProduce puts b.N records through the producer into the embedded
// server, with aggregation on and off, with Put and PutCallback, for CPU and
// allocation profiles of the whole path (go test -bench Produce
// -cpuprofile, -memprofile).
func BenchmarkProduce(b *testing.B) {
	for _, agg := range []bool{true, false} {
		for _, api := range []string{APIPut, APIPutCallback} {
			b.Run(map[bool]string{true: "aggregated", false: "raw"}[agg]+"/"+api, func(b *testing.B) {
				ctx := context.Background()
				res, err := runProduceOnce(ctx, ProduceConfig{Shards: 4, Size: 100, Writers: 4}, agg, api, max(b.N, 1000))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.CPUPerRecord.Nanoseconds()), "cpu-ns/record")
				b.ReportMetric(res.AllocsPerRecord, "allocs/record")
			})
		}
	}
}
