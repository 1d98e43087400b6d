package emf_test

import (
	"bytes"
	"testing"

	"github.com/ksp-project/ksp/metrics/emf"
)

// Whatever names and values it is given, Emit either refuses them, writing
// nothing, or writes documents that all keep the specification.
func FuzzEmit(f *testing.F) {
	f.Add("StreamName", "orders", "UserRecordsPut", "Count", 3.0, uint8(1), uint8(1))
	f.Add("", "", "", "", 0.0, uint8(0), uint8(0))
	f.Add("D", "v", "M", "Bytes/Second", -1e300, uint8(250), uint8(120))
	f.Fuzz(func(t *testing.T, dim, value, metric, unit string, v float64, metrics, values uint8) {
		var buf bytes.Buffer
		w, err := emf.NewWriter(&buf, "fuzz")
		if err != nil {
			t.Fatal(err)
		}
		ms := make([]emf.Metric, int(metrics)%150)
		for i := range ms {
			ms[i] = emf.Metric{Name: metric + string(rune('A'+i%26)) + string(rune('a'+i/26)), Unit: emf.Unit(unit), Values: make([]float64, 1+int(values)%150)}
			for j := range ms[i].Values {
				ms[i].Values[j] = v
			}
		}
		if err := w.Emit([]emf.Dimension{{Name: dim, Value: value}}, ms); err != nil {
			if buf.Len() != 0 {
				t.Fatalf("wrote %d bytes and failed: %v", buf.Len(), err)
			}
			return
		}
		docs(t, buf.Bytes())
	})
}
