package kds

// ValidSequenceNumber reports whether s matches the API's pattern for
// sequence numbers, 0|([1-9]\d{0,128}).
func ValidSequenceNumber(s string) bool {
	if len(s) == 0 || len(s) > 129 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CompareSequenceNumbers compares two valid sequence numbers numerically:
// -1 when a < b, 0 when equal, +1 when a > b. Both must pass
// ValidSequenceNumber; they have no leading zeros, so length orders first.
func CompareSequenceNumbers(a, b string) int {
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
