package server_test

import (
	"encoding/json"
	"testing"

	"github.com/ksp-project/ksp/server"
)

// TestMemberConversionErrors checks that a member value the API type cannot
// hold is a SerializationException whose message names the value and the type.
func TestMemberConversionErrors(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.Options{DisableLimits: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, tc := range []struct{ op, body, msg string }{
		{"ListStreams", `{"Limit":"ten"}`, `"ten" can not be converted to an Integer`},
		{"ListStreams", `{"Limit":true}`, `true can not be converted to an Integer`},
		{"ListShards", `{"StreamName":"s","StreamCreationTimestamp":"today"}`, `"today" can not be converted to milliseconds since epoch`},
	} {
		rec := do(srv, "application/x-amz-json-1.1", tc.op, []byte(tc.body))
		var out struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: %v: %s", tc.op, tc.body, err, rec.Body)
		}
		if rec.Code != 400 || out.Type != "SerializationException" || out.Message != tc.msg {
			t.Errorf("%s %s: %d %s %q, want 400 SerializationException %q", tc.op, tc.body, rec.Code, out.Type, out.Message, tc.msg)
		}
	}
}
