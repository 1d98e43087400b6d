package sdkhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/ksp-project/ksp/internal/jsonwire"
)

// FastCodecs is a kinesis.New option (or a per-operation option) that
// gives the client ksp's codecs for its two hot calls, in place of the
// SDK's generic JSON codec (see the package doc):
//
//	client := kinesis.NewFromConfig(cfg, sdkhttp.FastCodecs)
//
// Applying it twice is the same as once.
func FastCodecs(o *kinesis.Options) {
	if o.Protocol == nil {
		return // not a client the SDK could serve either
	}
	if _, ok := o.Protocol.(*fastProtocol); ok {
		return
	}
	o.Protocol = &fastProtocol{ClientProtocol: o.Protocol}
	// A copy: o.APIOptions may share its array with the aws.Config's.
	o.APIOptions = append(o.APIOptions[:len(o.APIOptions):len(o.APIOptions)], addReleaseBodies)
}

// FastCodecsCBOR is FastCodecs with GetRecords spoken in CBOR
// (application/x-amz-cbor-1.1, which Kinesis and ksp's server speak and the
// Java SDK uses by default): the records' data travel as bytes, so neither
// side base64-codes them, and the answer is a quarter smaller. Opt-in: the
// SDK itself speaks only JSON, so an answer of a shape the CBOR decoder does
// not take, and every error answer, is transcoded to JSON for the SDK's
// decoder (errors stay typed). Every other call speaks JSON as before.
// Calls that add FastCodecs keep this.
func FastCodecsCBOR(o *kinesis.Options) {
	if o.Protocol == nil {
		return
	}
	if p, ok := o.Protocol.(*fastProtocol); ok {
		if !p.cbor {
			o.Protocol = &fastProtocol{ClientProtocol: p.ClientProtocol, cbor: true}
		}
		return
	}
	FastCodecs(o)
	o.Protocol.(*fastProtocol).cbor = true
}

const (
	putRecordsTarget = "Kinesis_20131202.PutRecords"
	getRecordsTarget = "Kinesis_20131202.GetRecords"
	jsonContentType  = "application/x-amz-json-1.1"
	// maxPooled is the largest buffer kept for reuse: above a full
	// GetRecords answer (10 MB of data, base64) and a PutRecords request.
	maxPooled = 32 << 20
)

// fastProtocol is the SDK's protocol with PutRecords requests and 2xx
// GetRecords answers coded by ksp; everything else, errors included, goes
// to the SDK's protocol it embeds.
type fastProtocol struct {
	smithyhttp.ClientProtocol
	cbor bool // GetRecords in CBOR
}

// SerializeRequest writes a PutRecords request into a pooled buffer, which
// the call gives back once it has finished, retries included.
func (p *fastProtocol) SerializeRequest(ctx context.Context, schema *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	if get, ok := in.(*kinesis.GetRecordsInput); ok && p.cbor {
		return setBody(req, getRecordsTarget, cborContentType, appendGetRecordsCBOR(nil, get))
	}
	put, ok := in.(*kinesis.PutRecordsInput)
	if !ok {
		return p.ClientProtocol.SerializeRequest(ctx, schema, in, req)
	}
	var b *[]byte
	if h, ok := ctx.Value(heldKey{}).(*heldBuffers); ok {
		b = getBuffer(putRecordsSize(put))
		h.hold(b)
	} else {
		b = new([]byte) // no release after the call: the garbage collector's
	}
	*b = appendPutRecords((*b)[:0], put)
	return setBody(req, putRecordsTarget, jsonContentType, *b)
}

// setBody makes req a call of target with body.
func setBody(req *smithyhttp.Request, target, contentType string, body []byte) error {
	req.Method = http.MethodPost
	if req.URL.Path == "" {
		req.URL.Path = "/"
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", contentType)
	// Seekable: SigV4 hashes the payload, and retries rewind it.
	sreq, err := req.SetStream(bytes.NewReader(body))
	if err != nil {
		return err
	}
	*req = *sreq
	return nil
}

// DeserializeResponse decodes a 2xx GetRecords answer read into a pooled
// buffer; a body the fast decoder does not take is handed to the SDK's
// decoder as it was read, so the result is the SDK's in every case.
func (p *fastProtocol) DeserializeResponse(ctx context.Context, schema *smithy.OperationSchema, types *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) error {
	get, ok := out.(*kinesis.GetRecordsOutput)
	isCBOR := ok && p.cbor && isCBORAnswer(resp)
	if !isCBOR && (!ok || resp.StatusCode < 200 || resp.StatusCode >= 300) {
		return p.ClientProtocol.DeserializeResponse(ctx, schema, types, resp, out)
	}
	b := getBuffer(int(min(resp.ContentLength, maxPooled))) // -1: streamed
	defer putBuffer(b)
	var err error
	if *b, err = readAll((*b)[:0], resp.Body, resp.ContentLength); err != nil {
		return &smithy.DeserializationError{Err: err}
	}
	body, ok2xx := *b, resp.StatusCode >= 200 && resp.StatusCode < 300
	switch {
	case ok2xx && len(body) == 0:
		return nil
	case ok2xx && isCBOR && decodeGetRecordsCBOR(body, get, slabsFrom(ctx)):
		return nil
	case isCBOR:
		// What the SDK can read: the same answer in JSON.
		j, ok := cborToJSON(body)
		if !ok {
			if ok2xx {
				return &smithy.DeserializationError{Err: fmt.Errorf("a GetRecords answer in CBOR that has no JSON form (%d bytes)", len(body))}
			}
			j = nil // an error answer: the SDK names it by its status and headers
		}
		body = j
		hdr := resp.Header.Clone()
		hdr.Set("Content-Type", jsonContentType)
		hdr.Del("Content-Length")
		orig := resp.Response
		cp := *orig
		cp.Header, cp.ContentLength = hdr, int64(len(body))
		resp.Response = &cp
		defer func() { resp.Response = orig }()
	case decodeGetRecords(body, get, slabsFrom(ctx)):
		return nil
	}
	orig := resp.Body // read to its end; the call's middleware still closes it
	resp.Body = io.NopCloser(bytes.NewReader(body))
	defer func() { resp.Body = orig }()
	return sdkDecode(ctx, p.ClientProtocol, schema, types, resp, out)
}

// isCBORAnswer reports whether resp's body is CBOR.
func isCBORAnswer(resp *smithyhttp.Response) bool {
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return strings.TrimSpace(ct) == cborContentType
}

// sdkDecode is the SDK's decoder, with its panics (smithy-go v1.28.9 panics
// on a timestamp written as the string "NaN") turned into the error a body
// it cannot decode gets.
func sdkDecode(ctx context.Context, next smithyhttp.ClientProtocol, schema *smithy.OperationSchema, types *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &smithy.DeserializationError{Err: fmt.Errorf("the SDK's decoder panicked: %v", p)}
		}
	}()
	return next.DeserializeResponse(ctx, schema, types, resp, out)
}

// buffers are the request and answer buffers kept between calls: at most
// maxKept bytes of them, the most recently used first. Not a sync.Pool: it
// empties at every garbage collection, and a client busy enough to need
// megabyte buffers collects garbage about once per call, so a pool would
// hand out a fresh buffer (grown and zeroed again) nearly every time.
var buffers freeList

const maxKept = 64 << 20

type freeList struct {
	mu    sync.Mutex // guards bufs and bytes
	bufs  []*[]byte
	bytes int
}

// getBuffer returns a kept buffer for want bytes: the smallest that holds
// them, or else the largest (want < 0, a streamed answer of unknown size:
// the largest), so a large answer does not grow a small buffer that a
// request left while a large one waits in the list.
func getBuffer(want int) *[]byte {
	buffers.mu.Lock()
	defer buffers.mu.Unlock()
	best := -1
	for i, b := range buffers.bufs {
		c := cap(*b)
		switch {
		case best < 0:
			best = i
		case want >= 0 && c >= want:
			if bc := cap(*buffers.bufs[best]); bc < want || c < bc {
				best = i
			}
		case c > cap(*buffers.bufs[best]) && (want < 0 || cap(*buffers.bufs[best]) < want):
			best = i
		}
	}
	if best < 0 {
		return new([]byte)
	}
	b := buffers.bufs[best]
	last := len(buffers.bufs) - 1
	buffers.bufs[best] = buffers.bufs[last]
	buffers.bufs[last] = nil
	buffers.bufs = buffers.bufs[:last]
	buffers.bytes -= cap(*b)
	return b
}

// putBuffer keeps b for reuse. Over maxKept, smaller kept buffers make room
// for a larger one: growing a large buffer again costs a copy and a clear of
// megabytes, a small one little.
func putBuffer(b *[]byte) {
	*b = (*b)[:0]
	if cap(*b) > maxPooled {
		return
	}
	buffers.mu.Lock()
	defer buffers.mu.Unlock()
	for buffers.bytes+cap(*b) > maxKept {
		small := -1
		for i, k := range buffers.bufs {
			if cap(*k) < cap(*b) && (small < 0 || cap(*k) < cap(*buffers.bufs[small])) {
				small = i
			}
		}
		if small < 0 {
			return // the collector's
		}
		buffers.bytes -= cap(*buffers.bufs[small])
		last := len(buffers.bufs) - 1
		buffers.bufs[small] = buffers.bufs[last]
		buffers.bufs[last] = nil
		buffers.bufs = buffers.bufs[:last]
	}
	buffers.bufs = append(buffers.bufs, b)
	buffers.bytes += cap(*b)
}

// putRecordsSize is about the encoded size of in (at least it, with
// ordinary keys).
func putRecordsSize(in *kinesis.PutRecordsInput) int {
	size := 64
	for _, r := range in.Records {
		size += base64.StdEncoding.EncodedLen(len(r.Data)) + 64
		if r.PartitionKey != nil {
			size += len(*r.PartitionKey)
		}
		if r.ExplicitHashKey != nil {
			size += len(*r.ExplicitHashKey)
		}
	}
	for _, s := range []*string{in.StreamName, in.StreamARN, in.StreamId} {
		if s != nil {
			size += len(*s) + 16
		}
	}
	return size
}

// readAll appends r to b; size is the expected length (-1: unknown, as
// for an answer the server streams).
func readAll(b []byte, r io.Reader, size int64) ([]byte, error) {
	if size > 0 && size <= maxPooled {
		b = slices.Grow(b, int(size)+1) // +1: the read that sees io.EOF
	}
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, max(len(b), 64<<10)) // doubling: a streamed answer is copied about once
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// heldBuffers are the pooled request bodies of one call.
type heldBuffers struct {
	mu   sync.Mutex // guards bufs
	bufs []*[]byte
}

type heldKey struct{}

func (h *heldBuffers) hold(b *[]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bufs = append(h.bufs, b)
}

func (h *heldBuffers) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.bufs {
		putBuffer(b)
	}
	h.bufs = nil
}

// addReleaseBodies gives a PutRecords call's pooled request bodies back
// once the call has finished: by then smithy-go has closed the body of
// every attempt (its closed body reads nothing more from the buffer), and
// the SigV4 hash and every retry are done.
func addReleaseBodies(stack *middleware.Stack) error {
	if stack.ID() != "PutRecords" {
		return nil
	}
	return stack.Initialize.Add(releaseBodies{}, middleware.Before)
}

type releaseBodies struct{}

func (releaseBodies) ID() string { return "ksp.ReleasePooledBodies" }

func (releaseBodies) HandleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	h := new(heldBuffers)
	defer h.release()
	return next.HandleInitialize(context.WithValue(ctx, heldKey{}, h), in)
}

// appendPutRecords appends in as the SDK writes it: members that are nil
// are left out.
func appendPutRecords(b []byte, in *kinesis.PutRecordsInput) []byte {
	b = slices.Grow(b, putRecordsSize(in))
	b = append(b, '{')
	comma := false
	member := func(name string) {
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if in.DryRun != nil {
		member("DryRun")
		if *in.DryRun {
			b = append(b, "true"...)
		} else {
			b = append(b, "false"...)
		}
	}
	if in.Records != nil {
		member("Records")
		b = append(b, '[')
		for i, r := range in.Records {
			if i > 0 {
				b = append(b, ',')
			}
			start := len(b)
			if r.Data != nil {
				b = append(b, `,"Data":`...)
				b = jsonwire.AppendBlob(b, r.Data)
			}
			if r.ExplicitHashKey != nil {
				b = append(b, `,"ExplicitHashKey":`...)
				b = jsonwire.AppendString(b, *r.ExplicitHashKey)
			}
			if r.PartitionKey != nil {
				b = append(b, `,"PartitionKey":`...)
				b = jsonwire.AppendString(b, *r.PartitionKey)
			}
			if len(b) == start {
				b = append(b, '{')
			} else {
				b[start] = '{' // the first member's comma opens the object
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	for _, m := range []struct {
		name string
		v    *string
	}{{"StreamARN", in.StreamARN}, {"StreamId", in.StreamId}, {"StreamName", in.StreamName}} {
		if m.v != nil {
			member(m.name)
			b = jsonwire.AppendString(b, *m.v)
		}
	}
	return append(b, '}')
}
