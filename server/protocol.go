package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/metrics"
)

const (
	contentJSON = "application/x-amz-json-1.1"
	contentCBOR = "application/x-amz-cbor-1.1"
	targetAPI   = "Kinesis_20131202"
)

// call is one decoded request on its way through an operation.
type call struct {
	ctx  context.Context
	op   string
	cbor bool
	body []byte
	now  time.Time
}

// decode fills v from the request body. Type mismatches and malformed bodies
// are SerializationException, naming the member when known.
func (c *call) decode(v any) error {
	if c.cbor {
		if err := cborDec.Unmarshal(c.body, v); err != nil {
			var te *cbor.UnmarshalTypeError
			if errors.As(err, &te) {
				return kds.Errorf(kds.ErrCodeSerialization, "Value of CBOR type %s can not be converted to %s", te.CBORType, te.GoType)
			}
			return kds.Errorf(kds.ErrCodeSerialization, "Malformed CBOR request body: %v", err)
		}
		return nil
	}
	if err := checkJSONText(c.body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(c.body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return kds.Errorf(kds.ErrCodeSerialization, "Value of JSON type %s at '%s' can not be converted to %s", te.Value, memberPath(te.Field), awsTypeName(te.Type.String()))
		}
		var ce *conversionError
		if errors.As(err, &ce) {
			return kds.Errorf(kds.ErrCodeSerialization, "%s", ce.msg)
		}
		return kds.Errorf(kds.ErrCodeSerialization, "Malformed JSON request body: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return kds.Errorf(kds.ErrCodeSerialization, "Malformed JSON request body: trailing data after the object")
	}
	return nil
}

// memberPath is a JSON error's field path without the Go names of embedded
// request parts ("putRecordsEntry.Data" is the member "Data").
func memberPath(field string) string {
	parts := strings.Split(field, ".")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" && !(p[0] >= 'a' && p[0] <= 'z') {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ".")
}

// checkJSONText refuses what encoding/json would silently replace with
// U+FFFD: bytes that are not UTF-8 (JSON text must be UTF-8, and AWS's
// parser refuses them) and \u escapes of lone UTF-16 surrogates (no Unicode
// string holds one; a partition key made of them would hash as something
// else than was sent).
func checkJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return kds.Errorf(kds.ErrCodeSerialization, "Malformed JSON request body: invalid UTF-8 byte sequence")
	}
	for rest := body; ; {
		i := bytes.Index(rest, []byte(`\u`))
		if i < 0 {
			return nil
		}
		// An escaped backslash followed by "u" is not an escape: count the
		// backslashes before this one.
		j := i
		for j > 0 && rest[j-1] == '\\' {
			j--
		}
		if (i-j)%2 == 1 {
			rest = rest[i+2:]
			continue
		}
		r, ok := hex4(rest[i+2:])
		rest = rest[i+2:]
		switch {
		case !ok || !utf16.IsSurrogate(r):
			continue
		case r < 0xDC00: // a high surrogate must be followed by an escaped low one
			if len(rest) >= 10 && rest[4] == '\\' && rest[5] == 'u' {
				if lo, ok := hex4(rest[6:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					rest = rest[10:]
					continue
				}
			}
		}
		return kds.Errorf(kds.ErrCodeSerialization, "Malformed JSON request body: lone UTF-16 surrogate \\u%04x in a string", r)
	}
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(v), err == nil
}

func awsTypeName(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "String"
	case "int", "int32", "int64":
		return "Integer"
	case "bool":
		return "Boolean"
	case "[]uint8", "server.blob":
		return "Blob"
	case "server.epochMillis":
		return "Timestamp"
	}
	if strings.HasPrefix(goType, "[]") {
		return "List"
	}
	if strings.HasPrefix(goType, "map[") {
		return "Map"
	}
	return "Structure"
}

// jsonAppender is implemented by responses with a hand-written JSON encoder
// (the hot paths: PutRecords, GetRecords).
type jsonAppender interface{ appendJSON([]byte) []byte }

// jsonStreamer is implemented by responses that can be large (GetRecords, up
// to 10 MiB of data): they declare their length and write themselves in
// pieces.
type jsonStreamer interface {
	writeJSON(http.ResponseWriter) error
}

type handler func(s *Server, c *call) (any, error)

// ServeHTTP decodes one API call, runs it and writes the answer. It reads
// the body as it comes, without the edge protections (body deadlines and
// budget, concurrency cap, signatures) that HTTPHandler adds around the same
// steps; Serve uses HTTPHandler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", s.requestID())
	c, fn, ok := s.route(w, r)
	if !ok {
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), r.ContentLength)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			err = s.tooLarge(-1)
		} else {
			err = kds.Errorf(kds.ErrCodeSerialization, "Reading request body: %v", err)
		}
		s.writeError(w, c, err)
		return
	}
	if es := s.serveCall(w, r, c, fn, body); es != nil {
		es.serveStream(w, r)
	}
}

// isHealthCheck reports whether r asks for the health endpoint, which needs
// neither a body nor a signature.
func isHealthCheck(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/healthcheck" || r.URL.Path == "/health")
}

// isMetrics reports whether r asks for the metrics (metrics.Path, or
// PrometheusPath), which,
// like a Prometheus endpoint, need no signature: they name streams and
// count records, nothing more.
func isMetrics(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == metrics.Path || r.URL.Path == PrometheusPath)
}

// route checks what the headers say (method, content type, operation,
// declared length) and answers the request itself when they are wrong or it
// is a health check (ok false). Nothing of the body has been read yet.
func (s *Server) route(w http.ResponseWriter, r *http.Request) (c *call, fn handler, ok bool) {
	if isHealthCheck(r) {
		s.serveHealth(w)
		return nil, nil, false
	}
	if isMetrics(r) {
		s.metricsHandler().ServeHTTP(w, r)
		return nil, nil, false
	}
	ctype, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	ctype = strings.TrimSpace(ctype)
	c = &call{ctx: r.Context(), cbor: ctype == contentCBOR}
	if r.Method != http.MethodPost {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeUnknownOperation, "Unsupported HTTP method %s; the Kinesis API is POST /", r.Method))
		return nil, nil, false
	}
	if ctype != contentJSON && ctype != contentCBOR {
		// AWS answers an unknown content type 404 with a bare XML error body.
		w.Header().Set("X-Amzn-ErrorType", kds.ErrCodeUnknownOperation)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<UnknownOperationException/>\n")
		return nil, nil, false
	}
	api, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	fn, known := operations[op]
	if api != targetAPI || !known {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeUnknownOperation, "Unknown operation %q (X-Amz-Target %q)", op, r.Header.Get("X-Amz-Target")))
		return nil, nil, false
	}
	c.op = op
	if fn == nil {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeUnknownOperation, "Operation %s is not implemented by ksp yet", op))
		return nil, nil, false
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeError(w, c, s.tooLarge(r.ContentLength))
		return nil, nil, false
	}
	return c, fn, true
}

// tooLarge is the answer to a body over Options.MaxBodyBytes (n < 0: its
// length is not known).
func (s *Server) tooLarge(n int64) error {
	if n < 0 {
		return kds.Errorf(kds.ErrCodeRequestEntityTooLarge, "Request body exceeds the limit of %d bytes", s.opts.MaxBodyBytes)
	}
	return kds.Errorf(kds.ErrCodeRequestEntityTooLarge, "Request body of %d bytes exceeds the limit of %d bytes", n, s.opts.MaxBodyBytes)
}

// serveCall runs a routed call on its whole body: injected faults, the
// operation, the answer. An answer that is an event stream is returned for
// the caller to write once it has let go of the request's resources.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, c *call, fn handler, body []byte) eventStreamer {
	if !isObject(body, c.cbor) {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeSerialization, "The request body of %s must be an object", c.op))
		return nil
	}
	c.body = body
	f := s.faults.Load()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil
		}
	}
	if err := f.injectedError(c.op); err != nil {
		s.writeError(w, c, err)
		return nil
	}
	c.now = s.now()
	resp, err := s.invoke(fn, c)
	if err != nil {
		s.writeError(w, c, err)
		return nil
	}
	if es, ok := resp.(eventStreamer); ok {
		return es
	}
	s.writeResponse(w, c, resp)
	if r, ok := resp.(releaser); ok {
		r.release()
	}
	return nil
}

// releaser is implemented by answers that hold pooled memory, given back
// once they are written.
type releaser interface{ release() }

// isObject reports whether a body starts with an object: '{' in JSON, a map
// (major type 5) in CBOR. Anything else (empty, null, a list, a string) is a
// SerializationException, as on AWS.
func isObject(body []byte, isCBOR bool) bool {
	if isCBOR {
		return len(body) > 0 && body[0]>>5 == 5
	}
	t := bytes.TrimLeft(body, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func (s *Server) requestID() string {
	var b [16]byte
	copy(b[:8], s.reqBase[:])
	binary.BigEndian.PutUint64(b[8:], s.reqSeq.Add(1))
	return uuidFrom(b)
}

func (s *Server) writeResponse(w http.ResponseWriter, c *call, resp any) {
	var body []byte
	var err error
	if c.cbor {
		w.Header().Set("Content-Type", contentCBOR)
		if st, ok := resp.(cborStreamer); ok {
			if err := st.writeCBOR(w); err != nil {
				s.log.Debug("writing response", "op", c.op, "err", err)
			}
			return
		}
		body, err = cborEnc.Marshal(resp)
	} else {
		w.Header().Set("Content-Type", contentJSON)
		if st, ok := resp.(jsonStreamer); ok {
			if err := st.writeJSON(w); err != nil {
				s.log.Debug("writing response", "op", c.op, "err", err)
			}
			return
		}
		if a, ok := resp.(jsonAppender); ok {
			buf := responseBuffers.Get().(*[]byte)
			body = a.appendJSON((*buf)[:0])
			defer func() {
				if cap(body) <= maxKeptResponse {
					*buf = body[:0]
					responseBuffers.Put(buf)
				}
			}()
		} else {
			body, err = json.Marshal(resp)
		}
	}
	if err != nil {
		s.writeError(w, c, fmt.Errorf("encoding response: %w", err))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// responseBuffers hold the buffers JSON answers are built in (a PutRecords
// answer is tens of kilobytes). A Write does not keep what it is given, so
// the buffer goes back once the answer is written.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxKeptResponse = 1 << 20

// readBody reads a request body, in one allocation when its length is known.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, length)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message,omitempty"`
}

func (s *Server) writeError(w http.ResponseWriter, c *call, err error) {
	var ke *kds.Error
	if !errors.As(err, &ke) {
		// Errors without an AWS code come from below the API (the store, the
		// OS) and may name local files: the client gets a generic message
		// (retryable, in AWS's shape) and the request id to find the detail
		// in the server's log.
		s.log.Error("internal failure", "op", c.op, "request_id", w.Header().Get("x-amzn-RequestId"), "err", err)
		ke = clientError(err)
	}
	if ke.Code == kds.ErrCodeInternalFailure && ke.Message == msgInternalFailure {
		ke = kds.Errorf(kds.ErrCodeInternalFailure, "Internal service failure (request %s); the server log has the details.", w.Header().Get("x-amzn-RequestId"))
	}
	eb := errorBody{Type: ke.Code, Message: ke.Message}
	var body []byte
	if c.cbor {
		w.Header().Set("Content-Type", contentCBOR)
		body, _ = cborEnc.Marshal(eb)
	} else {
		w.Header().Set("Content-Type", contentJSON)
		body, _ = json.Marshal(eb)
	}
	w.Header().Set("X-Amzn-ErrorType", ke.Code)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(ke.HTTPStatus())
	w.Write(body)
	s.log.Debug("request failed", "op", c.op, "code", ke.Code, "message", ke.Message)
}
