package kds

import "testing"

func TestCompareSequenceNumbers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"0", "0", 0}, {"9", "10", -1}, {"10", "9", 1},
		{"49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899", -1},
	} {
		if got := CompareSequenceNumbers(c.a, c.b); got != c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	for _, bad := range []string{"", "01", "1x", "-1"} {
		if ValidSequenceNumber(bad) {
			t.Errorf("ValidSequenceNumber(%q) = true", bad)
		}
	}
}
