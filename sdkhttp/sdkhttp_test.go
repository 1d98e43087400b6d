package sdkhttp_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/ksp-project/ksp/sdkhttp"
)

// recorder keeps the request the wrapped client receives.
type recorder struct{ got *http.Request }

func (c *recorder) Do(r *http.Request) (*http.Response, error) {
	c.got = r
	return &http.Response{}, nil
}

// TestFixHidesWriteTo: the transport gets a body without WriteTo that reads
// the same bytes; the caller's request keeps its body; bodies without
// WriteTo and http.NoBody pass as they are; Fix is idempotent.
func TestFixHidesWriteTo(t *testing.T) {
	next := new(recorder)
	c := sdkhttp.Fix(next)
	if sdkhttp.Fix(c) != c {
		t.Fatal("Fix of a fixed client wrapped it again")
	}

	body := io.NopCloser(bytes.NewReader([]byte("payload"))) // has WriteTo
	req, _ := http.NewRequest("POST", "http://127.0.0.1/", body)
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := next.got.Body.(io.WriterTo); ok {
		t.Fatal("the transport still sees WriteTo")
	}
	if b, _ := io.ReadAll(next.got.Body); string(b) != "payload" {
		t.Fatalf("the transport read %q, want payload", b)
	}
	if req.Body != body {
		t.Fatal("Fix changed the caller's request")
	}

	plain := io.NopCloser(struct{ io.Reader }{bytes.NewReader(nil)}) // no WriteTo
	for _, b := range []io.ReadCloser{plain, http.NoBody, nil} {
		req, _ := http.NewRequest("POST", "http://127.0.0.1/", nil)
		req.Body = b
		if _, err := c.Do(req); err != nil {
			t.Fatal(err)
		}
		if next.got.Body != b {
			t.Fatalf("body %T was replaced by %T", b, next.got.Body)
		}
	}
}

// TestFixNil stands a nil client for http.DefaultClient.
func TestFixNil(t *testing.T) {
	if sdkhttp.Fix(nil) == nil {
		t.Fatal("Fix(nil) is nil")
	}
}
