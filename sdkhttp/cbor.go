package sdkhttp

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/internal/cborwire"
	"github.com/ksp-project/ksp/internal/jsonwire"
)

// GetRecords in CBOR (application/x-amz-cbor-1.1, the Java SDK's default
// with Kinesis): the records' data travel as byte strings, so neither side
// base64-codes them. The SDK reads only JSON, so an answer the fast decoder
// does not take, and every error answer, is transcoded to the JSON Kinesis
// would have sent and handed to the SDK's decoder: the result, typed errors
// included, is the SDK's.

const cborContentType = "application/x-amz-cbor-1.1"

// cborReader reads CBOR data items from b.
type cborReader struct {
	b []byte
	i int
}

// head reads an item's initial byte and argument. indef reports an
// indefinite length (arrays, maps, strings) or, for major type 7, a break.
func (r *cborReader) head() (major byte, arg uint64, indef, ok bool) {
	if r.i >= len(r.b) {
		return 0, 0, false, false
	}
	c := r.b[r.i]
	r.i++
	major, info := c&majorMask, c&^majorMask
	switch {
	case info < 24:
		return major, uint64(info), false, true
	case info <= 27:
		n := 1 << (info - 24)
		if len(r.b)-r.i < n {
			return 0, 0, false, false
		}
		for _, x := range r.b[r.i : r.i+n] {
			arg = arg<<8 | uint64(x)
		}
		r.i += n
		return major, arg, false, true
	case info == 31 && major >= cborwire.Bytes && major != cborwire.Tag:
		return major, 0, true, true
	}
	return 0, 0, false, false
}

// str reads a definite-length string of major type want; the bytes alias
// r.b.
func (r *cborReader) str(want byte) ([]byte, bool) {
	major, n, indef, ok := r.head()
	if !ok || major != want || indef || n > uint64(len(r.b)-r.i) {
		return nil, false
	}
	s := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return s, true
}

// isBreak consumes a break (the end of an indefinite-length item) if one
// comes next.
func (r *cborReader) isBreak() bool {
	if r.i < len(r.b) && r.b[r.i] == 0xff {
		r.i++
		return true
	}
	return false
}

// container reads the head of a map or an array of major type want and
// calls elem for each entry (each key for a map, with the reader at its
// value); n is counted down, or the break ends an indefinite one.
func (r *cborReader) container(want byte, elem func() bool) bool {
	major, n, indef, ok := r.head()
	if !ok || major != want || !indef && n > uint64(len(r.b)-r.i) { // each entry takes a byte at least
		return false
	}
	for i := uint64(0); indef || i < n; i++ {
		if indef && r.isBreak() {
			return true
		}
		if !elem() {
			return false
		}
	}
	return true
}

// majorMask selects the major type of an initial byte.
const majorMask = 0xe0

// maxCBORDepth bounds the nesting the decoders follow.
const maxCBORDepth = 32

// decodeGetRecordsCBOR is decodeGetRecords for a CBOR answer of the shape
// Kinesis and ksp write: maps with text keys, definite-length strings,
// timestamps as tag 1 around integer epoch milliseconds. Anything else
// (nulls, floats where integers go, repeated members, invalid UTF-8) is
// left to the transcoder and the SDK.
func decodeGetRecordsCBOR(body []byte, out *kinesis.GetRecordsOutput, slabs *Slabs) bool {
	return decodeAnswer(&cborGetRecords{r: cborReader{b: body}, out: outputArena{slabs: slabs}}, out)
}

// cborGetRecords is the wireReader of CBOR answers.
type cborGetRecords struct {
	r   cborReader
	out outputArena
}

func (d *cborGetRecords) output() *outputArena { return &d.out }

func (d *cborGetRecords) end() bool { return d.r.i == len(d.r.b) }

func (d *cborGetRecords) recordsAhead() int {
	return bytes.Count(d.r.b[d.r.i:], []byte("\x6eSequenceNumber"))
}

func (d *cborGetRecords) open(object bool) (int, bool) {
	want := cborwire.Array
	if object {
		want = cborwire.Map
	}
	major, n, indef, ok := d.r.head()
	switch {
	case !ok || major != want || !indef && n > uint64(len(d.r.b)-d.r.i): // each entry takes a byte at least
		return 0, false
	case indef:
		return -1, true
	}
	return int(n), true
}

func (d *cborGetRecords) more(_ bool, i, n int) (more, ok bool) {
	if n >= 0 {
		return i < n, true
	}
	if d.r.isBreak() {
		return false, true
	}
	return true, d.r.i < len(d.r.b)
}

func (d *cborGetRecords) key() ([]byte, bool) {
	key, ok := d.r.str(cborwire.Text)
	return key, ok && utf8.Valid(key)
}

func (d *cborGetRecords) object(member func(key []byte) bool) bool {
	return d.r.container(cborwire.Map, func() bool {
		key, ok := d.r.str(cborwire.Text)
		return ok && utf8.Valid(key) && member(key)
	})
}

func (d *cborGetRecords) array(elem func() bool) bool {
	return d.r.container(cborwire.Array, elem)
}

func (d *cborGetRecords) string() (string, bool) {
	s, ok := d.r.str(cborwire.Text)
	if !ok || !utf8.Valid(s) {
		return "", false
	}
	return d.out.keep(s), true
}

func (d *cborGetRecords) int64() (int64, bool) {
	major, n, _, ok := d.r.head()
	switch {
	case !ok || n > math.MaxInt64:
		return 0, false
	case major == cborwire.Uint:
		return int64(n), true
	case major == cborwire.Neg:
		return -1 - int64(n), true
	}
	return 0, false
}

// data copies a byte string into the output's slabs.
func (d *cborGetRecords) data() ([]byte, bool) {
	v, ok := d.r.str(cborwire.Bytes)
	if !ok {
		return nil, false
	}
	return d.out.claim(copy(d.out.room(len(v)), v)), true
}

// skip reads a member the decoder does not know: plain values, and maps
// and arrays of them, up to a small depth.
func (d *cborGetRecords) skip(depth int) bool {
	if depth > 16 || d.r.i >= len(d.r.b) {
		return false
	}
	switch d.r.b[d.r.i] & majorMask {
	case cborwire.Uint, cborwire.Neg:
		_, ok := d.int64()
		return ok
	case cborwire.Bytes:
		_, ok := d.r.str(cborwire.Bytes)
		return ok
	case cborwire.Text:
		_, ok := d.string()
		return ok
	case cborwire.Array:
		return d.array(func() bool { return d.skip(depth + 1) })
	case cborwire.Map:
		return d.object(func([]byte) bool { return d.skip(depth + 1) })
	}
	switch d.r.b[d.r.i] {
	case 0xf4, 0xf5: // false, true
		d.r.i++
		return true
	}
	return false
}

// timestamp reads tag 1 around epoch milliseconds, and gives the time the
// SDK gives for the same instant in JSON (epoch seconds with the
// milliseconds as fraction, truncated after multiplying by 1000 in
// float64), so both wire formats decode to the same output.
func (d *cborGetRecords) timestamp() (time.Time, bool) {
	major, tag, _, ok := d.r.head()
	if !ok || major != cborwire.Tag || tag != 1 {
		return time.Time{}, false
	}
	ms, ok := d.int64()
	if !ok || ms > 1<<53 || ms < -(1<<53) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(math.Trunc(float64(ms)/1e3*1e3))*1e6).UTC(), true
}

// cborToJSON transcodes one CBOR data item (an answer or an error body) to
// the JSON Kinesis would have sent: byte strings as base64, tag 1 (epoch
// milliseconds) as epoch seconds, maps with text keys as objects. It
// reports false for what has no JSON form (other keys, tags, undefined,
// NaN and infinities), for malformed CBOR and for anything after the item.
func cborToJSON(body []byte) ([]byte, bool) {
	r := cborReader{b: body}
	out, ok := r.appendJSON(make([]byte, 0, len(body)+len(body)/3+16), 0)
	return out, ok && r.i == len(body)
}

func (r *cborReader) appendJSON(dst []byte, depth int) ([]byte, bool) {
	if depth > maxCBORDepth || r.i >= len(r.b) {
		return dst, false
	}
	if r.b[r.i]&majorMask == cborwire.Simple {
		return r.appendSimpleJSON(dst)
	}
	major, arg, indef, ok := r.head()
	if !ok {
		return dst, false
	}
	switch major {
	case cborwire.Uint:
		return strconv.AppendUint(dst, arg, 10), true
	case cborwire.Neg:
		if arg > math.MaxInt64 {
			return dst, false
		}
		return strconv.AppendInt(dst, -1-int64(arg), 10), true
	case cborwire.Bytes, cborwire.Text:
		s, ok := r.stringBody(major, arg, indef)
		if !ok {
			return dst, false
		}
		if major == cborwire.Bytes {
			return jsonwire.AppendBlob(dst, s), true
		}
		if !utf8.Valid(s) {
			return dst, false
		}
		return jsonwire.AppendString(dst, string(s)), true
	case cborwire.Array, cborwire.Map:
		open, close := byte('['), byte(']')
		if major == cborwire.Map {
			open, close = '{', '}'
		}
		dst = append(dst, open)
		for i := uint64(0); indef || i < arg; i++ {
			if indef && r.isBreak() {
				break
			}
			if r.i >= len(r.b) {
				return dst, false
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			if major == cborwire.Map {
				if r.b[r.i]&majorMask != cborwire.Text {
					return dst, false // JSON keys are strings
				}
				if dst, ok = r.appendJSON(dst, depth+1); !ok {
					return dst, false
				}
				dst = append(dst, ':')
			}
			if dst, ok = r.appendJSON(dst, depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, close), true
	}
	// A tag: only 1, epoch milliseconds as the Java SDK writes them, which
	// JSON carries as epoch seconds.
	if arg != 1 || r.i >= len(r.b) {
		return dst, false
	}
	var ms float64
	if r.b[r.i]&majorMask == cborwire.Simple {
		if ms, ok = r.float(); !ok {
			return dst, false
		}
	} else {
		switch m, v, _, ok := r.head(); {
		case ok && m == cborwire.Uint:
			ms = float64(v)
		case ok && m == cborwire.Neg:
			ms = -1 - float64(v)
		default:
			return dst, false
		}
	}
	if math.IsInf(ms, 0) || math.IsNaN(ms) {
		return dst, false
	}
	return strconv.AppendFloat(dst, ms/1e3, 'f', -1, 64), true
}

// appendSimpleJSON transcodes false, true, null and floats.
func (r *cborReader) appendSimpleJSON(dst []byte) ([]byte, bool) {
	switch r.b[r.i] {
	case 0xf4:
		r.i++
		return append(dst, "false"...), true
	case 0xf5:
		r.i++
		return append(dst, "true"...), true
	case 0xf6:
		r.i++
		return append(dst, "null"...), true
	}
	f, ok := r.float()
	if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64), true
}

// float reads a half, single or double precision float.
func (r *cborReader) float() (float64, bool) {
	if r.i >= len(r.b) {
		return 0, false
	}
	info := r.b[r.i] & 31
	if r.b[r.i]&majorMask != cborwire.Simple || info < 25 || info > 27 {
		return 0, false
	}
	_, v, _, ok := r.head()
	if !ok {
		return 0, false
	}
	switch info {
	case 25:
		return halfToFloat(uint16(v)), true
	case 26:
		return float64(math.Float32frombits(uint32(v))), true
	}
	return math.Float64frombits(v), true
}

func halfToFloat(h uint16) float64 {
	exp, mant := int(h>>10)&0x1f, float64(h&0x3ff)
	var f float64
	switch exp {
	case 0:
		f = math.Ldexp(mant, -24)
	case 31:
		f = math.Inf(1)
		if mant != 0 {
			f = math.NaN()
		}
	default:
		f = math.Ldexp(mant+1024, exp-25)
	}
	if h&0x8000 != 0 {
		return -f
	}
	return f
}

// stringBody reads the bytes of a string whose head was read: definite, or
// indefinite (chunks of the same major type, concatenated).
func (r *cborReader) stringBody(major byte, n uint64, indef bool) ([]byte, bool) {
	if !indef {
		if n > uint64(len(r.b)-r.i) {
			return nil, false
		}
		s := r.b[r.i : r.i+int(n)]
		r.i += int(n)
		return s, true
	}
	var s []byte
	for !r.isBreak() {
		chunk, ok := r.str(major)
		if !ok {
			return nil, false
		}
		s = append(s, chunk...)
	}
	if s == nil {
		s = []byte{}
	}
	return s, true
}

// appendGetRecordsCBOR writes a GetRecords request as the Java SDK does:
// members that are nil are left out.
func appendGetRecordsCBOR(b []byte, in *kinesis.GetRecordsInput) []byte {
	n := 0
	for _, set := range []bool{in.Limit != nil, in.ShardIterator != nil, in.StreamARN != nil} {
		if set {
			n++
		}
	}
	b = cborwire.AppendHead(b, cborwire.Map, uint64(n))
	if in.Limit != nil {
		b = cborwire.AppendText(b, "Limit")
		b = cborwire.AppendInt(b, int64(*in.Limit))
	}
	if in.ShardIterator != nil {
		b = cborwire.AppendText(b, "ShardIterator")
		b = cborwire.AppendText(b, *in.ShardIterator)
	}
	if in.StreamARN != nil {
		b = cborwire.AppendText(b, "StreamARN")
		b = cborwire.AppendText(b, *in.StreamARN)
	}
	return b
}
