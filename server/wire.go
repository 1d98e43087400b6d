package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// blob is an API Blob member: standard, padded base64 in JSON and nothing
// else. encoding/json's own []byte decoding skips line breaks, which a JSON
// escape (\n) smuggles in; AWS refuses them, and so does blob. CBOR carries
// blobs as byte strings, decoded as usual.
type blob []byte

func (b *blob) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var text string
	if len(data) == 0 || data[0] != '"' || json.Unmarshal(data, &text) != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(data), Type: reflect.TypeFor[blob]()}
	}
	if strings.ContainsAny(text, "\r\n") {
		return fmt.Errorf("base64 blob can not be converted: it holds a line break")
	}
	out, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return fmt.Errorf("base64 blob can not be converted: %v", err)
	}
	*b = out
	return nil
}

// jsonKind names the JSON type of a value as encoding/json's errors do.
func jsonKind(data []byte) string {
	switch {
	case len(data) == 0:
		return "value"
	case data[0] == '"':
		return "string"
	case data[0] == '{':
		return "object"
	case data[0] == '[':
		return "array"
	case data[0] == 't' || data[0] == 'f':
		return "bool"
	}
	return "number"
}

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
	return t.setMillis(f*1000, b)
}

// setMillis stores ms. Like AWS, which reads 1e300 as a far-future time,
// it saturates what int64 milliseconds cannot hold (1e300 seconds, +Inf)
// at the end of the range instead of letting the conversion wrap into the
// past; only NaN, which is no time at all, is refused.
func (t *epochMillis) setMillis(ms float64, sent any) error {
	if math.IsNaN(ms) {
		return conversionErrorf("%s can not be converted to milliseconds since epoch", sent)
	}
	*t = epochMillis(saturate(math.Round(ms), math.MinInt64, math.MaxInt64))
	return nil
}

// saturate converts f to an int64 in [lo, hi], clamping what lies outside.
func saturate(f float64, lo, hi int64) int64 {
	switch {
	case f >= float64(hi): // float64(MaxInt64) is 2^63, past the range
		return hi
	case f <= float64(lo):
		return lo
	}
	return int64(f)
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
		return t.setMillis(n, fmt.Sprint(n))
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

// integer is an API Integer member (a Java int on AWS). Like AWS's JSON
// reader (its TruncatingBigNumber) it drops a fraction (1.5 reads as 1) and
// clamps a value past the int range to the range's end, so 2^63 is reported
// by validation as '2147483647', as AWS and kinesalite do, never wrapped.
type integer int64

func (n *integer) UnmarshalJSON(b []byte) error {
	if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*n = integer(min(max(i, math.MinInt32), math.MaxInt32))
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return conversionErrorf("%s can not be converted to an Integer", b)
	}
	return n.setTrunc(f, b)
}

// setTrunc stores f without its fraction, clamped to the int range.
func (n *integer) setTrunc(f float64, sent any) error {
	if math.IsNaN(f) {
		return conversionErrorf("%s can not be converted to an Integer", sent)
	}
	*n = integer(saturate(math.Trunc(f), math.MinInt32, math.MaxInt32))
	return nil
}

func (n *integer) UnmarshalCBOR(b []byte) error {
	var v any
	if err := cborDec.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case uint64:
		*n = integer(min(x, math.MaxInt32))
	case int64:
		*n = integer(min(max(x, math.MinInt32), math.MaxInt32))
	case float64:
		return n.setTrunc(x, fmt.Sprint(x))
	default:
		return conversionErrorf("a %T can not be converted to an Integer", v)
	}
	return nil
}
