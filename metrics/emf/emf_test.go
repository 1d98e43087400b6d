package emf_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ksp-project/ksp/metrics/emf"
)

// schema is testdata/emf.schema.json, compiled once.
var schema = func() *jsonschema.Schema {
	f, err := os.Open("testdata/emf.schema.json")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://ksp.invalid/emf.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		panic(err)
	}
	return c.MustCompile(url)
}()

// checkDoc returns what is wrong with one EMF document: against the schema,
// and the rules a schema cannot state (every reference resolves to a root
// member of the right type; at most 100 values per metric; the size limit).
func checkDoc(line []byte) error {
	if len(line) >= emf.MaxDocument {
		return fmt.Errorf("document of %d bytes, the limit is %d", len(line), emf.MaxDocument)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		return err
	}
	if err := schema.Validate(v); err != nil {
		return err
	}
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	var root map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		return err
	}
	if err := json.Unmarshal(line, &root); err != nil {
		return err
	}
	for _, dir := range doc.AWS.CloudWatchMetrics {
		for _, set := range dir.Dimensions {
			for _, name := range set {
				s, ok := root[name].(string)
				if !ok || s == "" || len(s) > 1024 {
					return fmt.Errorf("dimension %q: root member %v is not a string of 1 to 1024 characters", name, root[name])
				}
			}
		}
		for _, m := range dir.Metrics {
			switch x := root[m.Name].(type) {
			case float64:
			case []any:
				if len(x) == 0 || len(x) > emf.MaxValues {
					return fmt.Errorf("metric %q has %d values", m.Name, len(x))
				}
				for _, e := range x {
					if _, ok := e.(float64); !ok {
						return fmt.Errorf("metric %q: value %v is not a number", m.Name, e)
					}
				}
			default:
				return fmt.Errorf("metric %q: root member %v is not a number or an array of numbers", m.Name, root[m.Name])
			}
		}
	}
	return nil
}

// docs checks every line of out and returns the documents.
func docs(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var all []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if err := checkDoc(sc.Bytes()); err != nil {
			t.Fatalf("invalid EMF document: %v\n%s", err, sc.Bytes())
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	return all
}

// values gathers every value of metric name over docs.
func values(all []map[string]any, name string) []float64 {
	var out []float64
	for _, d := range all {
		switch x := d[name].(type) {
		case float64:
			out = append(out, x)
		case []any:
			for _, e := range x {
				out = append(out, e.(float64))
			}
		}
	}
	return out
}

func newWriter(t *testing.T, out io.Writer) *emf.Writer {
	t.Helper()
	w, err := emf.NewWriter(out, "ksp-test")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func seq(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i) + 0.5
	}
	return v
}

func TestWriterOutputValidates(t *testing.T) {
	many := make([]emf.Metric, 250)
	for i := range many {
		many[i] = emf.Metric{Name: fmt.Sprintf("M%03d", i), Unit: emf.Count, Values: []float64{float64(i)}}
	}
	dims30 := make([]emf.Dimension, emf.MaxDimensions)
	for i := range dims30 {
		dims30[i] = emf.Dimension{Name: fmt.Sprintf("D%02d", i), Value: strings.Repeat("v", 1024)}
	}
	cases := []struct {
		name    string
		dims    []emf.Dimension
		metrics []emf.Metric
		docs    int
	}{
		{"one value", []emf.Dimension{{"StreamName", "orders"}}, []emf.Metric{{Name: "UserRecordsPut", Unit: emf.Count, Values: []float64{3}}}, 1},
		{"no dimensions, no unit", nil, []emf.Metric{{Name: "X", Values: []float64{1, 2}}}, 1},
		{"high resolution", nil, []emf.Metric{{Name: "X", Unit: emf.Milliseconds, Values: []float64{1}, HighResolution: true}}, 1},
		{"250 metrics", []emf.Dimension{{"StreamName", "orders"}}, many, 3},
		{"250 values", nil, []emf.Metric{{Name: "Lat", Unit: emf.Milliseconds, Values: seq(250)}, {Name: "Y", Values: []float64{7}}}, 3},
		{"30 long dimensions", dims30, many[:100], 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newWriter(t, &buf)
			if err := w.Emit(c.dims, c.metrics); err != nil {
				t.Fatal(err)
			}
			all := docs(t, buf.Bytes())
			if len(all) != c.docs {
				t.Fatalf("%d documents, want %d", len(all), c.docs)
			}
			// Nothing lost, nothing doubled, in order.
			for _, m := range c.metrics {
				if got := values(all, m.Name); fmt.Sprint(got) != fmt.Sprint(m.Values) {
					t.Fatalf("metric %s: values %v, want %v", m.Name, got, m.Values)
				}
			}
			for _, d := range all {
				aws := d["_aws"].(map[string]any)
				if ts := aws["Timestamp"].(float64); ts < 1e12 {
					t.Fatalf("Timestamp %v is not in milliseconds", ts)
				}
			}
		})
	}
}

func TestWriterRefusesBadInput(t *testing.T) {
	one := []emf.Metric{{Name: "X", Values: []float64{1}}}
	dims31 := make([]emf.Dimension, 31)
	for i := range dims31 {
		dims31[i] = emf.Dimension{Name: fmt.Sprintf("D%02d", i), Value: "v"}
	}
	cases := []struct {
		name    string
		dims    []emf.Dimension
		metrics []emf.Metric
		culprit string
	}{
		{"31 dimensions", dims31, one, "31 dimensions"},
		{"empty dimension value", []emf.Dimension{{"StreamName", ""}}, one, "StreamName"},
		{"dimension value too long", []emf.Dimension{{"StreamName", strings.Repeat("v", 1025)}}, one, "StreamName"},
		{"non-ASCII dimension value", []emf.Dimension{{"StreamName", "größe"}}, one, "größe"},
		{"colon dimension", []emf.Dimension{{":x", "v"}}, one, ":x"},
		{"metric named like a dimension", []emf.Dimension{{"X", "v"}}, one, `"X"`},
		{"metric twice", nil, []emf.Metric{one[0], one[0]}, `"X"`},
		{"reserved _aws", nil, []emf.Metric{{Name: "_aws", Values: []float64{1}}}, "_aws"},
		{"NaN", nil, []emf.Metric{{Name: "X", Values: []float64{math.NaN()}}}, "NaN"},
		{"infinity", nil, []emf.Metric{{Name: "X", Values: []float64{math.Inf(1)}}}, "Inf"},
		{"no value", nil, []emf.Metric{{Name: "X"}}, "no value"},
		{"bad unit", nil, []emf.Metric{{Name: "X", Unit: "Apples", Values: []float64{1}}}, "Apples"},
		{"non-ASCII name", nil, []emf.Metric{{Name: "Lätenz", Values: []float64{1}}}, "Lätenz"},
		{"long name", nil, []emf.Metric{{Name: strings.Repeat("n", 256), Values: []float64{1}}}, "metric name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newWriter(t, &buf)
			err := w.Emit(c.dims, c.metrics)
			if err == nil || !strings.Contains(err.Error(), c.culprit) {
				t.Fatalf("Emit: %v, want an error naming %q", err, c.culprit)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %q after an error", buf.String())
			}
		})
	}
	for _, ns := range []string{"", "AWS/Kinesis", strings.Repeat("n", 256), "tab\tns"} {
		if _, err := emf.NewWriter(&bytes.Buffer{}, ns); err == nil {
			t.Errorf("NewWriter accepted namespace %q", ns)
		}
	}
}

// The check itself fails documents that break the specification, so a
// passing check means something.
func TestCheckRejectsInvalidDocuments(t *testing.T) {
	metrics := func(n int) string {
		var defs, vals []string
		for i := range n {
			defs = append(defs, fmt.Sprintf(`{"Name":"M%d"}`, i))
			vals = append(vals, fmt.Sprintf(`"M%d":1`, i))
		}
		return fmt.Sprintf(`{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[%s]}]},%s}`,
			strings.Join(defs, ","), strings.Join(vals, ","))
	}
	var dims []string
	for i := range 31 {
		dims = append(dims, fmt.Sprintf(`"D%d"`, i))
	}
	bad := map[string]string{
		"no _aws":            `{"M":1}`,
		"no Timestamp":       `{"_aws":{"CloudWatchMetrics":[]}}`,
		"Timestamp a string": `{"_aws":{"Timestamp":"now","CloudWatchMetrics":[]}}`,
		"no Namespace":       `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[],"Metrics":[]}]}}`,
		"AWS/ namespace":     `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"AWS/Kinesis","Dimensions":[],"Metrics":[]}]}}`,
		"101 metrics":        metrics(101),
		"31 dimensions":      `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[` + strings.Join(dims, ",") + `]],"Metrics":[]}]}}`,
		"bad unit":           `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[{"Name":"M","Unit":"Apples"}]}]},"M":1}`,
		"resolution 5":       `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[{"Name":"M","StorageResolution":5}]}]},"M":1}`,
		"extra member":       `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[],"Extra":1}]}}`,
		"missing metric":     `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[{"Name":"M"}]}]}}`,
		"metric a string":    `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":"1"}`,
		"dimension a number": `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["D"]],"Metrics":[]}]},"D":1}`,
		"101 values":         `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":[` + strings.TrimSuffix(strings.Repeat("1,", 101), ",") + `]}`,
	}
	for name, doc := range bad {
		if err := checkDoc([]byte(doc)); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
	if err := checkDoc([]byte(metrics(100))); err != nil {
		t.Fatalf("100 metrics refused: %v", err)
	}
}
