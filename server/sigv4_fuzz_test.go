package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/server"
)

// FuzzSigV4Header sends arbitrary Authorization and X-Amz-Date headers to a
// server that verifies signatures: it must answer an AWS auth error, never
// panic or accept.
func FuzzSigV4Header(f *testing.F) {
	now := time.Now().UTC()
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/"+now.Format("20060102")+"/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", now.Format("20060102T150405Z"))
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=, Signature=", "x")
	f.Add("AWS4-HMAC-SHA256 ,,==", "")
	f.Add("", "")
	srv, err := server.New(server.Options{Credentials: map[string]string{"AKID": "secret"}, RetentionInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	h := srv.HTTPHandler()
	f.Fuzz(func(t *testing.T, authz, date string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		req.Header["Authorization"] = []string{authz}
		req.Header["X-Amz-Date"] = []string{date}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch typ := w.Header().Get("X-Amzn-ErrorType"); typ {
		case "MissingAuthenticationTokenException", "IncompleteSignatureException", "InvalidSignatureException", "UnrecognizedClientException":
		default:
			t.Fatalf("Authorization %q X-Amz-Date %q: %d %q", authz, date, w.Code, typ)
		}
	})
}
