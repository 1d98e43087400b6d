package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/fxamacker/cbor/v2"
)

// epochMillis is an API timestamp. On the wire it is epoch seconds with a
// fraction in JSON and epoch milliseconds (CBOR tag 1, as the Java SDK writes
// it) in CBOR.
type epochMillis int64

func (t epochMillis) MarshalJSON() ([]byte, error) {
	return appendEpochSeconds(nil, int64(t)), nil
}

// appendEpochSeconds renders milliseconds as seconds with up to three decimals.
func appendEpochSeconds(dst []byte, ms int64) []byte {
	dst = strconv.AppendInt(dst, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		dst = append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	return dst
}

func (t *epochMillis) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return conversionErrorf("%s can not be converted to milliseconds since epoch", b)
	}
	*t = epochMillis(math.Round(f * 1000))
	return nil
}

func (t epochMillis) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: 1, Content: int64(t)})
}

func (t *epochMillis) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0]>>5 == 6 { // a tag: Java sends tag 1 around epoch millis
		var raw cbor.RawTag
		if err := cbor.Unmarshal(b, &raw); err != nil {
			return err
		}
		b = raw.Content
	}
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		return err
	}
	switch n := v.(type) {
	case uint64:
		if n > math.MaxInt64 {
			return fmt.Errorf("timestamp %d out of range", n)
		}
		*t = epochMillis(n)
	case int64:
		*t = epochMillis(n)
	case float64:
		*t = epochMillis(math.Round(n))
	default:
		return conversionErrorf("a %T can not be converted to milliseconds since epoch", v)
	}
	return nil
}

var (
	cborEnc cbor.EncMode
	cborDec cbor.DecMode
)

func init() {
	var err error
	if cborEnc, err = (cbor.EncOptions{}).EncMode(); err != nil {
		panic(err)
	}
	if cborDec, err = (cbor.DecOptions{
		MaxNestedLevels:  16,
		MaxArrayElements: 100000,
		MaxMapPairs:      100000,
		DupMapKey:        cbor.DupMapKeyQuiet,
	}).DecMode(); err != nil {
		panic(err)
	}
}

// uuidFrom formats 16 bytes as a UUID string (request ids).
func uuidFrom(b [16]byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 36)
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hex[c>>4], hex[c&15]
		j += 2
	}
	return string(out)
}

// conversionError is a member value that cannot be read as its API type.
// decode turns it into a SerializationException carrying its message.
type conversionError struct{ msg string }

func (e *conversionError) Error() string { return e.msg }

func conversionErrorf(format string, args ...any) error {
	return &conversionError{msg: fmt.Sprintf(format, args...)}
}

// integer is an API Integer or Long member. Like AWS's JSON reader it
// truncates a fractional number (1.5 reads as 1) instead of refusing it.
type integer int64

func (n *integer) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return conversionErrorf("%s can not be converted to an Integer", b)
	}
	if f > math.MaxInt64 || f < math.MinInt64 {
		return conversionErrorf("%s can not be converted to an Integer: out of range", b)
	}
	*n = integer(math.Trunc(f))
	return nil
}

func (n *integer) UnmarshalCBOR(b []byte) error {
	var v any
	if err := cborDec.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case uint64:
		*n = integer(min(x, math.MaxInt64))
	case int64:
		*n = integer(x)
	case float64:
		if x > math.MaxInt64 || x < math.MinInt64 || math.IsNaN(x) {
			return conversionErrorf("%v can not be converted to an Integer: out of range", x)
		}
		*n = integer(math.Trunc(x))
	default:
		return conversionErrorf("a %T can not be converted to an Integer", v)
	}
	return nil
}
