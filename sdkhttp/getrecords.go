package sdkhttp

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/internal/jsonwire"
)

// decodeGetRecords decodes a GetRecords answer in JSON of the shape Kinesis
// and ksp write into out and reports true, or reports false and leaves out
// as it was: escapes of UTF-16 surrogates, nulls, repeated members, numbers
// out of range and bad base64 are left to the SDK's decoder (see
// decodeAnswer and outputArena).
func decodeGetRecords(body []byte, out *kinesis.GetRecordsOutput, slabs *Slabs) bool {
	return decodeAnswer(&getRecordsDecoder{p: jsonwire.Scanner{B: body}, out: outputArena{slabs: slabs}}, out)
}

// getRecordsDecoder is the wireReader of JSON answers.
type getRecordsDecoder struct {
	p       jsonwire.Scanner
	out     outputArena
	scratch []byte // a string being unescaped
}

func (d *getRecordsDecoder) output() *outputArena { return &d.out }

func (d *getRecordsDecoder) end() bool { return d.p.End() }

func (d *getRecordsDecoder) recordsAhead() int {
	return bytes.Count(d.p.B[d.p.I:], []byte(`"SequenceNumber"`))
}

func (d *getRecordsDecoder) open(object bool) (int, bool) {
	return -1, d.p.Consume(map[bool]byte{true: '{', false: '['}[object])
}

func (d *getRecordsDecoder) more(object bool, i, _ int) (more, ok bool) {
	end := byte(']')
	if object {
		end = '}'
	}
	if d.p.Consume(end) {
		return false, true
	}
	return true, i == 0 || d.p.Consume(',')
}

func (d *getRecordsDecoder) key() ([]byte, bool) {
	key, ok := d.p.Str()
	return key, ok && d.p.Consume(':')
}

// object reads an object, calling member for each key with the scanner at
// its value.
func (d *getRecordsDecoder) object(member func(key []byte) bool) bool {
	if !d.p.Consume('{') {
		return false
	}
	for i := 0; !d.p.Consume('}'); i++ {
		if i > 0 && !d.p.Consume(',') {
			return false
		}
		key, ok := d.p.Str()
		if !ok || !d.p.Consume(':') || !member(key) {
			return false
		}
	}
	return true
}

// array reads an array, calling elem with the scanner at each element.
func (d *getRecordsDecoder) array(elem func() bool) bool {
	if !d.p.Consume('[') {
		return false
	}
	for i := 0; !d.p.Consume(']'); i++ {
		if i > 0 && !d.p.Consume(',') {
			return false
		}
		if !elem() {
			return false
		}
	}
	return true
}

// skip reads a value of a member the SDK's model does not know (Kinesis
// may add members), as the SDK skips it. Only the plainest JSON is taken:
// strings without escapes, nulls, numbers, booleans, and objects and arrays
// of those up to a small depth; anything else is left to the SDK.
func (d *getRecordsDecoder) skip(depth int) bool {
	if depth > 16 {
		return false
	}
	c, ok := d.p.Peek()
	if !ok {
		return false
	}
	switch {
	case c == '"':
		_, ok := d.p.Str()
		return ok
	case c == '{':
		return d.object(func([]byte) bool { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() bool { return d.skip(depth + 1) })
	case c == '-' || c >= '0' && c <= '9':
		_, ok := d.p.Number()
		return ok
	}
	for _, lit := range []string{"null", "true", "false"} {
		if bytes.HasPrefix(d.p.B[d.p.I:], []byte(lit)) {
			d.p.I += len(lit)
			return true
		}
	}
	return false
}

func (d *getRecordsDecoder) string() (string, bool) {
	var ok bool
	if d.scratch, ok = d.p.AppendStr(d.scratch[:0]); !ok {
		return "", false
	}
	return d.out.keep(d.scratch), true
}

func (d *getRecordsDecoder) int64() (int64, bool) {
	v, ok := d.p.Number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// data decodes a base64 string into the current slab, or a new one when it
// does not fit.
func (d *getRecordsDecoder) data() ([]byte, bool) {
	v, ok := d.p.RawStr()
	if !ok {
		return nil, false
	}
	room := d.out.room(base64.StdEncoding.DecodedLen(len(v)))
	n, err := base64.StdEncoding.Decode(room, v)
	if err != nil {
		return nil, false
	}
	return d.out.claim(n), true
}

// timestamp reads a timestamp as the SDK does: seconds as a JSON number,
// truncated to milliseconds after rounding seconds × 1000 to a float64.
func (d *getRecordsDecoder) timestamp() (time.Time, bool) {
	v, ok := d.p.Number()
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	ms := math.Trunc(f * 1e3)
	// Leave the edges (where the SDK's arithmetic overflows) to the SDK.
	if err != nil || math.Abs(ms) > 1<<53 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ms)*1e6).UTC(), true
}
