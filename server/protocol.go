package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/kds"
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
	dec := json.NewDecoder(bytes.NewReader(c.body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return kds.Errorf(kds.ErrCodeSerialization, "Value of JSON type %s at '%s' can not be converted to %s", te.Value, te.Field, awsTypeName(te.Type.String()))
		}
		var ce interface{ Error() string }
		if errors.As(err, &ce) && strings.Contains(err.Error(), "can not be converted") {
			return kds.Errorf(kds.ErrCodeSerialization, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return kds.Errorf(kds.ErrCodeSerialization, "Malformed JSON request body: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return kds.Errorf(kds.ErrCodeSerialization, "Malformed JSON request body: trailing data after the object")
	}
	return nil
}

func awsTypeName(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "String"
	case "int", "int32", "int64":
		return "Integer"
	case "bool":
		return "Boolean"
	case "[]uint8":
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
// to 10 MiB of data): above streamThreshold they are written in pieces
// without a Content-Length, so memory per request stays near the records.
type jsonStreamer interface {
	jsonSize() int
	writeJSON(io.Writer) error
}

const streamThreshold = 4 << 20

type handler func(s *Server, c *call) (any, error)

// ServeHTTP decodes one API call, runs it and writes the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("x-amzn-RequestId", s.requestID())
	if r.Method == http.MethodGet && (r.URL.Path == "/healthcheck" || r.URL.Path == "/health") {
		s.serveHealth(w)
		return
	}
	ctype, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	ctype = strings.TrimSpace(ctype)
	c := &call{ctx: r.Context(), cbor: ctype == contentCBOR}
	if r.Method != http.MethodPost {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeUnknownOperation, "Unsupported HTTP method %s; the Kinesis API is POST /", r.Method))
		return
	}
	if ctype != contentJSON && ctype != contentCBOR {
		// AWS answers an unknown content type 404 with a bare XML error body.
		w.Header().Set("X-Amzn-ErrorType", kds.ErrCodeUnknownOperation)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<UnknownOperationException/>\n")
		return
	}
	api, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	fn, known := operations[op]
	if api != targetAPI || !known {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeUnknownOperation, "Unknown operation %q (X-Amz-Target %q)", op, r.Header.Get("X-Amz-Target")))
		return
	}
	c.op = op
	if fn == nil {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeUnknownOperation, "Operation %s is not implemented by ksp yet", op))
		return
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeRequestEntityTooLarge, "Request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, s.opts.MaxBodyBytes))
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), r.ContentLength)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			s.writeError(w, c, kds.Errorf(kds.ErrCodeRequestEntityTooLarge, "Request body exceeds the limit of %d bytes", s.opts.MaxBodyBytes))
			return
		}
		s.writeError(w, c, kds.Errorf(kds.ErrCodeSerialization, "Reading request body: %v", err))
		return
	}
	if !isObject(body, c.cbor) {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeSerialization, "The request body of %s must be an object", op))
		return
	}
	c.body = body
	f := s.faults.Load()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if err := f.injectedError(op); err != nil {
		s.writeError(w, c, err)
		return
	}
	c.now = s.now()
	resp, err := s.invoke(fn, c)
	if err != nil {
		s.writeError(w, c, err)
		return
	}
	s.writeResponse(w, c, resp)
}

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
		body, err = cborEnc.Marshal(resp)
	} else {
		w.Header().Set("Content-Type", contentJSON)
		if st, ok := resp.(jsonStreamer); ok && st.jsonSize() > streamThreshold {
			if err := st.writeJSON(w); err != nil {
				s.log.Debug("writing response", "op", c.op, "err", err)
			}
			return
		}
		if a, ok := resp.(jsonAppender); ok {
			body = a.appendJSON(make([]byte, 0, 512))
		} else {
			body, err = json.Marshal(resp)
		}
	}
	if err != nil {
		s.writeError(w, c, kds.Errorf(kds.ErrCodeInternalFailure, "encoding response: %v", err))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

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
		// The error may name local files: it goes to the log, not the client.
		ke = s.storeFailure(c.op, err).(*kds.Error)
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
