package bench

import (
	"strings"
	"testing"
)

func TestRunESMSettlesEveryRecordInBothModes(t *testing.T) {
	rep, err := RunESM(t.Context(), ESMConfig{Records: 700, Shards: 2, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Mode != ESMInProcess || rep.Results[1].Mode != ESMHTTP {
		t.Fatalf("results %+v; want in-process then http", rep.Results)
	}
	for _, res := range rep.Results {
		// 700 records in batches of at most 50: at least 14 invokes.
		if res.Records != 700 || res.Invokes < 14 || res.PerSecond <= 0 || res.MeanInvoke <= 0 {
			t.Fatalf("%s: %+v; want 700 records in at least 14 invokes", res.Mode, res)
		}
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil || !strings.Contains(b.String(), "in-process") || !strings.Contains(b.String(), "http") {
		t.Fatalf("table %q (%v)", b.String(), err)
	}
}
