package feed

import (
	"strings"
	"testing"
)

func TestJSONField(t *testing.T) {
	for _, tc := range []struct {
		path, data, want, err string
	}{
		{"user_id", `{"user_id":"u1"}`, "u1", ""},
		{"user_id", `{"user_id":12345678901234567890}`, "12345678901234567890", ""},
		{"user.id", `{"user":{"id":"x"}}`, "x", ""},
		{"user_id", `{"user_id":""}`, "", "is empty"},
		{"user_id", `{"user_id":true}`, "", "not a string or number"},
		{"user_id", `{"other":1}`, "", `no field "user_id"`},
		{"user.id", `{"user":"flat"}`, "", "not inside a JSON object"},
		{"user_id", `not json`, "", "not a JSON object"},
	} {
		got, err := JSONField(tc.path).Key(Item{Data: []byte(tc.data)})
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("JSONField(%q) of %s = %q, %v; want %q, error containing %q", tc.path, tc.data, got, err, tc.want, tc.err)
		}
	}
}

func TestTemplate(t *testing.T) {
	k, err := Template("{{.Source}}-{{.Line}}-{{.Data}}")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Key(Item{Source: "f", Line: 7, Data: []byte("d")}); got != "f-7-d" || err != nil {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := Template("{{.Line"); err == nil {
		t.Fatal("a malformed template was accepted")
	}
}
