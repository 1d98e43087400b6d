package esm

import (
	"strings"
	"testing"
)

func TestFilterOperators(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{`{"data":{"kind":["order"]}}`, []string{`{"kind":"order"}`, `{"kind":["x","order"]}`}, []string{`{"kind":"Order"}`, `{}`, `{"kind":null}`, `"order"`, `not json`}},
		{`{"data":{"kind":[null]}}`, []string{`{"kind":null}`}, []string{`{}`, `{"kind":"x"}`}},
		{`{"data":{"kind":[""]}}`, []string{`{"kind":""}`}, []string{`{"kind":null}`, `{}`}},
		{`{"data":{"n":[5]}}`, []string{`{"n":5}`, `{"n":5.0}`}, []string{`{"n":"5"}`, `{"n":6}`}},
		{`{"data":{"kind":[{"anything-but":["a","b"]}]}}`, []string{`{"kind":"c"}`}, []string{`{"kind":"a"}`, `{}`}},
		{`{"data":{"kind":[{"anything-but":"a"}]}}`, []string{`{"kind":"c"}`}, []string{`{"kind":"a"}`}},
		{`{"data":{"kind":[{"anything-but":{"prefix":"tmp-"}}]}}`, []string{`{"kind":"order"}`}, []string{`{"kind":"tmp-1"}`, `{"kind":3}`}},
		{`{"data":{"t":[{"numeric":[">",0,"<=",100]}]}}`, []string{`{"t":0.5}`, `{"t":100}`}, []string{`{"t":0}`, `{"t":100.1}`, `{"t":"50"}`}},
		{`{"data":{"t":[{"numeric":["=",3]}]}}`, []string{`{"t":3}`}, []string{`{"t":4}`}},
		{`{"data":{"id":[{"exists":true}]}}`, []string{`{"id":1}`, `{"id":null}`}, []string{`{}`, `{"id":{"a":1}}`}},
		{`{"data":{"id":[{"exists":false}]}}`, []string{`{}`}, []string{`{"id":1}`}},
		{`{"data":{"name":[{"prefix":"AB"}]}}`, []string{`{"name":"AB12"}`}, []string{`{"name":"ab12"}`, `{"name":12}`}},
		{`{"data":{"file":[{"suffix":".png"}]}}`, []string{`{"file":"a.png"}`}, []string{`{"file":"a.jpg"}`}},
		{`{"data":{"kind":[{"equals-ignore-case":"ORDER"}]}}`, []string{`{"kind":"order"}`}, []string{`{"kind":"orders"}`}},
		{`{"data":{"session":{"duration":[{"numeric":[">",100]}]}}}`, []string{`{"session":{"duration":162}}`}, []string{`{"session":{"duration":50}}`, `{"session":162}`}},
		{`{"data":{"$or":[{"a":[1]},{"b":[2]}]}}`, []string{`{"a":1}`, `{"b":2}`}, []string{`{"a":2,"b":1}`}},
		{`{"data":{"kind":["order"],"total":[{"numeric":[">",100]}]}}`, []string{`{"kind":"order","total":101}`}, []string{`{"kind":"order","total":99}`, `{"total":101}`}},
	} {
		f, err := compileFilter(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		for _, d := range tc.match {
			if !matchAny([]filter{f}, []byte(d)) {
				t.Errorf("%s does not match %s", tc.pattern, d)
			}
		}
		for _, d := range tc.miss {
			if matchAny([]filter{f}, []byte(d)) {
				t.Errorf("%s matches %s", tc.pattern, d)
			}
		}
	}
}

func TestFilterPatternsRefused(t *testing.T) {
	for pattern, want := range map[string]string{
		`not json`:                             "is not a JSON object",
		`{"partitionKey":["1"]}`:               `filters on "partitionKey": Kinesis mappings filter on data only`,
		`{"data":["x"]}`:                       "data must be an object",
		`{"data":{"a":[]}}`:                    `field "a" has an empty list`,
		`{"data":{"a":"x"}}`:                   `field "a" must be an object or a list`,
		`{"data":{"a":[{"wildcard":"x*"}]}}`:   `unknown operator "wildcard"`,
		`{"data":{"a":[{"numeric":[">"]}]}}`:   "numeric takes one or two",
		`{"data":{"a":[{"numeric":["~",1]}]}}`: `numeric operator "~"`,
		`{"data":{"a":[{"prefix":1}]}}`:        "prefix takes a string",
		`{"data":{"a":[{"exists":"yes"}]}}`:    "exists takes true or false",
		`{"data":{"$or":[{"a":[1]}]}}`:         "$or takes a list of at least two",
	} {
		_, err := compileFilter(pattern)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", pattern, err, want)
		}
	}
}

func TestFilterSkipsAndCheckpointsPastUnmatched(t *testing.T) {
	s := newStream(t, 0)
	cfg := s.config()
	cfg.BatchSize = 2
	cfg.FilterCriteria = []string{`{"data":{"kind":["order"]}}`, `{"data":{"total":[{"numeric":[">",100]}]}}`}
	for _, d := range []string{`{"kind":"order"}`, `{"kind":"ping"}`, `not json`, `{"total":500}`, `{"kind":"order"}`, `{"kind":"ping"}`} {
		s.putData(d)
	}
	got := run(s, cfg, failing(s, 0))
	expectLog(t, got,
		`invoke {"kind":"order"},{"total":500}`, "checkpoint r3",
		`invoke {"kind":"order"}`, "checkpoint r4",
		"checkpoint r5") // the last record matched nothing: skipped past
}

// FuzzFilter: no pattern and no record data makes compiling or matching
// panic or loop.
func FuzzFilter(f *testing.F) {
	f.Add(`{"data":{"kind":["order"],"t":[{"numeric":[">",0,"<=",100]}]}}`, `{"kind":"order","t":5}`)
	f.Add(`{"data":{"$or":[{"a":[{"anything-but":{"prefix":"x"}}]},{"b":[{"exists":false}]}]}}`, `{"a":["y",1,null,{"z":[]}]}`)
	f.Add(`{"data":{"n":[1e400]}}`, `{"n":1e400}`)
	f.Fuzz(func(t *testing.T, pattern, data string) {
		flt, err := compileFilter(pattern)
		if err != nil {
			return
		}
		matchAny([]filter{flt}, []byte(data))
	})
}
