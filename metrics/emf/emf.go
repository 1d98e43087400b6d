// Package emf writes metrics in CloudWatch's Embedded Metric Format (EMF):
// JSON documents, one per line, that CloudWatch Logs turns into metrics. In
// Lambda, write them to standard output; in a container, to a log stream the
// CloudWatch agent or a log driver ships (with the header
// x-amzn-logs-format: json/emf when sent through PutLogEvents).
//
// Writer emits documents that keep every rule of the specification: a
// document has at most 100 metrics, a dimension set at most 30 dimensions,
// a metric at most 100 values (more metrics or values go into further
// documents), and a document stays under 256 KiB. Bad names and values are
// refused with an error naming them; nothing is written then.
//
// NewProducerMetrics and NewConsumerMetrics adapt the producer's and the
// consumers' hooks: they add up what the hooks report and write it with
// Flush, or every interval with Run.
package emf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Unit is a CloudWatch unit.
type Unit string

// The units CloudWatch accepts.
const (
	Seconds         Unit = "Seconds"
	Microseconds    Unit = "Microseconds"
	Milliseconds    Unit = "Milliseconds"
	Bytes           Unit = "Bytes"
	Kilobytes       Unit = "Kilobytes"
	Megabytes       Unit = "Megabytes"
	Gigabytes       Unit = "Gigabytes"
	Terabytes       Unit = "Terabytes"
	Bits            Unit = "Bits"
	Kilobits        Unit = "Kilobits"
	Megabits        Unit = "Megabits"
	Gigabits        Unit = "Gigabits"
	Terabits        Unit = "Terabits"
	Percent         Unit = "Percent"
	Count           Unit = "Count"
	BytesPerSecond  Unit = "Bytes/Second"
	KilobytesPerSec Unit = "Kilobytes/Second"
	MegabytesPerSec Unit = "Megabytes/Second"
	GigabytesPerSec Unit = "Gigabytes/Second"
	TerabytesPerSec Unit = "Terabytes/Second"
	BitsPerSecond   Unit = "Bits/Second"
	KilobitsPerSec  Unit = "Kilobits/Second"
	MegabitsPerSec  Unit = "Megabits/Second"
	GigabitsPerSec  Unit = "Gigabits/Second"
	TerabitsPerSec  Unit = "Terabits/Second"
	CountPerSecond  Unit = "Count/Second"
	None            Unit = "None"
)

var units = []Unit{
	Seconds, Microseconds, Milliseconds, Bytes, Kilobytes, Megabytes, Gigabytes, Terabytes,
	Bits, Kilobits, Megabits, Gigabits, Terabits, Percent, Count,
	BytesPerSecond, KilobytesPerSec, MegabytesPerSec, GigabytesPerSec, TerabytesPerSec,
	BitsPerSecond, KilobitsPerSec, MegabitsPerSec, GigabitsPerSec, TerabitsPerSec, CountPerSecond, None,
}

// The specification's and CloudWatch's limits.
const (
	MaxMetrics    = 100 // metric definitions per document
	MaxDimensions = 30  // dimensions per dimension set
	MaxValues     = 100 // values per metric per document
	MaxDocument   = 256 << 10

	maxNameLen     = 255  // namespace, metric and dimension names
	maxDimValueLen = 1024 // dimension values
)

// Dimension is a dimension's name and value.
type Dimension struct{ Name, Value string }

// Metric is a metric and its values (at least one) in one document's time.
type Metric struct {
	Name   string
	Unit   Unit // "" leaves it out (CloudWatch then uses None)
	Values []float64
	// HighResolution stores the metric at one-second resolution
	// (StorageResolution 1) instead of one minute.
	HighResolution bool
}

// Writer writes EMF documents to an io.Writer.
type Writer struct {
	w         io.Writer
	namespace string
	now       func() time.Time
}

// NewWriter returns a Writer of metrics in namespace (1 to 255 characters,
// not starting with "AWS/", which is reserved) to w.
func NewWriter(w io.Writer, namespace string) (*Writer, error) {
	if err := checkName("namespace", namespace); err != nil {
		return nil, err
	}
	if strings.HasPrefix(namespace, "AWS/") {
		return nil, fmt.Errorf("emf: namespace %q: the AWS/ prefix is reserved for AWS services", namespace)
	}
	return &Writer{w: w, namespace: namespace, now: time.Now}, nil
}

// Emit writes metrics with dims (one dimension set; none is allowed) at the
// current time, in as many documents as the limits need, all in one Write
// call so that a writer safe for concurrent use (an *os.File) never
// interleaves them with other lines.
func (w *Writer) Emit(dims []Dimension, metrics []Metric) error {
	if err := check(dims, metrics); err != nil {
		return err
	}
	var out []byte
	ts := w.now().UnixMilli()
	for _, batch := range split(metrics) {
		b, err := w.encode(ts, dims, batch)
		if err != nil {
			return err
		}
		out = append(out, b...)
	}
	if len(out) == 0 {
		return nil
	}
	_, err := w.w.Write(out)
	return err
}

// check refuses what CloudWatch would refuse, naming the culprit.
func check(dims []Dimension, metrics []Metric) error {
	if len(dims) > MaxDimensions {
		return fmt.Errorf("emf: %d dimensions, at most %d are allowed", len(dims), MaxDimensions)
	}
	taken := map[string]string{"_aws": "reserved"}
	for _, d := range dims {
		if err := checkName("dimension name", d.Name); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name, ":") {
			return fmt.Errorf("emf: dimension name %q must not start with a colon", d.Name)
		}
		if err := checkText("dimension "+d.Name+" value", d.Value, maxDimValueLen); err != nil {
			return err
		}
		if what, ok := taken[d.Name]; ok {
			return fmt.Errorf("emf: dimension name %q is already used (%s)", d.Name, what)
		}
		taken[d.Name] = "a dimension"
	}
	for _, m := range metrics {
		if err := checkName("metric name", m.Name); err != nil {
			return err
		}
		if what, ok := taken[m.Name]; ok {
			return fmt.Errorf("emf: metric name %q is already used (%s)", m.Name, what)
		}
		taken[m.Name] = "a metric"
		if m.Unit != "" && !slices.Contains(units, m.Unit) {
			return fmt.Errorf("emf: metric %s: unit %q is not a CloudWatch unit", m.Name, m.Unit)
		}
		if len(m.Values) == 0 {
			return fmt.Errorf("emf: metric %s has no value", m.Name)
		}
		for _, v := range m.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("emf: metric %s: value %v is not a finite number", m.Name, v)
			}
		}
	}
	return nil
}

func checkName(what, s string) error { return checkText(what, s, maxNameLen) }

// checkText applies CloudWatch's rule for names and dimension values: 1 to
// maxLen printable ASCII characters, not only white space.
func checkText(what, s string, maxLen int) error {
	if s == "" || len(s) > maxLen || strings.TrimSpace(s) == "" {
		return fmt.Errorf("emf: %s %q: 1 to %d characters, not only white space", what, s, maxLen)
	}
	for _, r := range s {
		if r > 0x7e || r < 0x20 {
			return fmt.Errorf("emf: %s %q: only printable ASCII characters are allowed", what, s)
		}
	}
	return nil
}

// split cuts metrics into batches of at most MaxMetrics metrics of at most
// MaxValues values each: a metric with more values continues in the next
// batches.
func split(metrics []Metric) [][]Metric {
	var batches [][]Metric
	rest := slices.Clone(metrics)
	for len(rest) > 0 {
		var batch, next []Metric
		for _, m := range rest {
			if len(batch) == MaxMetrics {
				next = append(next, m)
				continue
			}
			head := m
			if len(m.Values) > MaxValues {
				head.Values = m.Values[:MaxValues]
				m.Values = m.Values[MaxValues:]
				next = append(next, m)
			}
			batch = append(batch, head)
		}
		batches = append(batches, batch)
		rest = next
	}
	return batches
}

// The document's metadata, in the specification's names.
type (
	metadata struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}
	directive struct {
		Namespace  string       `json:"Namespace"`
		Dimensions [][]string   `json:"Dimensions"`
		Metrics    []definition `json:"Metrics"`
	}
	definition struct {
		Name              string `json:"Name"`
		Unit              Unit   `json:"Unit,omitempty"`
		StorageResolution int    `json:"StorageResolution,omitempty"`
	}
)

var errTooLarge = errors.New("emf: one metric's values exceed the document size limit")

// encode returns the JSON lines of one batch: one document, or several if
// it would pass MaxDocument.
func (w *Writer) encode(ts int64, dims []Dimension, batch []Metric) ([]byte, error) {
	names := make([]string, len(dims))
	root := make(map[string]any, len(dims)+len(batch)+1)
	for i, d := range dims {
		names[i] = d.Name
		root[d.Name] = d.Value
	}
	dir := directive{Namespace: w.namespace, Dimensions: [][]string{names}, Metrics: make([]definition, len(batch))}
	for i, m := range batch {
		dir.Metrics[i] = definition{Name: m.Name, Unit: m.Unit}
		if m.HighResolution {
			dir.Metrics[i].StorageResolution = 1
		}
		if len(m.Values) == 1 {
			root[m.Name] = m.Values[0]
		} else {
			root[m.Name] = m.Values
		}
	}
	root["_aws"] = metadata{Timestamp: ts, CloudWatchMetrics: []directive{dir}}
	b, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	if len(b) < MaxDocument {
		return append(b, '\n'), nil
	}
	if len(batch) == 1 {
		return nil, errTooLarge
	}
	half := len(batch) / 2
	first, err := w.encode(ts, dims, batch[:half])
	if err != nil {
		return nil, err
	}
	second, err := w.encode(ts, dims, batch[half:])
	return append(first, second...), err
}
