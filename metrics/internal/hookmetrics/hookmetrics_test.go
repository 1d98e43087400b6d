package hookmetrics_test

import (
	"strings"
	"testing"

	"github.com/ksp-project/ksp/metrics/internal/hookmetrics"
)

// The table keeps the rules the exporters rely on: unique names, counters
// ending in _total, times in milliseconds exported as _seconds, at most
// MaxLabels labels, and buckets for every distribution.
func TestDefsFollowTheExportersRules(t *testing.T) {
	for _, set := range [][]*hookmetrics.Def{hookmetrics.ProducerDefs, hookmetrics.ConsumerDefs} {
		names, proms := map[string]bool{}, map[string]bool{}
		for _, d := range set {
			if names[d.Name] || proms[d.Prom] {
				t.Errorf("%s / %s listed twice", d.Name, d.Prom)
			}
			names[d.Name], proms[d.Prom] = true, true
			if (d.Kind == hookmetrics.Counter) != strings.HasSuffix(d.Prom, "_total") {
				t.Errorf("%s: a counter's Prometheus name, and only a counter's, ends in _total", d.Prom)
			}
			if (d.Unit == hookmetrics.Milliseconds) != strings.HasSuffix(d.Prom, "_seconds") {
				t.Errorf("%s: times (in milliseconds) and only times are exported as _seconds", d.Prom)
			}
			if len(d.Labels) == 0 || len(d.Labels) > hookmetrics.MaxLabels {
				t.Errorf("%s has %d labels, want 1 to %d", d.Name, len(d.Labels), hookmetrics.MaxLabels)
			}
			if (d.Kind == hookmetrics.Distribution) != (len(d.Buckets) > 0) {
				t.Errorf("%s: buckets go with distributions", d.Name)
			}
			if d.Help == "" {
				t.Errorf("%s has no help", d.Name)
			}
		}
	}
}
