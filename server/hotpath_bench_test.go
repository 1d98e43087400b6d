package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/server"
)

// discard is a ResponseWriter that keeps the status and drops the body, so
// the hot-path benchmarks measure the server and nothing of a client.
type discard struct {
	h      http.Header
	status int
	body   bytes.Buffer
	keep   bool
}

func (d *discard) Header() http.Header  { return d.h }
func (d *discard) WriteHeader(code int) { d.status = code }
func (d *discard) Write(p []byte) (int, error) {
	if d.keep {
		d.body.Write(p)
	}
	return len(p), nil
}

// call serves one JSON request through the handler a running server serves
// (HTTPHandler: the edge's body reading included).
func call(b *testing.B, srv http.Handler, w *discard, op string, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	w.status = 0
	w.body.Reset()
	srv.ServeHTTP(w, req)
	if w.status != 0 && w.status != http.StatusOK {
		b.Fatalf("%s: status %d: %s", op, w.status, w.body.String())
	}
}

func putRecordsBody(stream string, n, size int) []byte {
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, size))
	var sb strings.Builder
	sb.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"Data":"%s","PartitionKey":"pk-%d"}`, data, i)
	}
	fmt.Fprintf(&sb, `],"StreamName":"%s"}`, stream)
	return []byte(sb.String())
}

func benchServer(b *testing.B) (http.Handler, *discard) {
	srv, err := server.New(server.Options{DisableLimits: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	h := srv.HTTPHandler()
	w := &discard{h: http.Header{}, keep: true}
	call(b, h, w, "CreateStream", []byte(`{"StreamName":"s","ShardCount":1}`))
	return h, w
}

// reportPerRecord reports wall and CPU time (of the whole process since
// cpu0: the collector's work included) per record. CPU time holds on a
// busy machine, where wall time does not.
func reportPerRecord(b *testing.B, cpu0 time.Duration, records int) {
	n := float64(b.N * records)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	if cpu := childproc.CPUTime(os.Getpid()) - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
	}
}

// BenchmarkServerPutRecords: the server's own cost of PutRecords of 500
// 100-byte records (decode, route, append, commit, answer), per record.
func BenchmarkServerPutRecords(b *testing.B) {
	srv, w := benchServer(b)
	body := putRecordsBody("s", 500, 100)
	w.keep = false
	b.ReportAllocs()
	cpu0 := childproc.CPUTime(os.Getpid())
	for b.Loop() {
		call(b, srv, w, "PutRecords", body)
	}
	reportPerRecord(b, cpu0, 500)
}

// BenchmarkServerGetRecords: the server's own cost of GetRecords of 10,000
// 100-byte records (read, encode, answer), per record.
func BenchmarkServerGetRecords(b *testing.B) {
	srv, w := benchServer(b)
	body := putRecordsBody("s", 500, 100)
	for range 20 {
		call(b, srv, w, "PutRecords", body)
	}
	call(b, srv, w, "GetShardIterator", []byte(`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`))
	var it struct{ ShardIterator string }
	if err := json.Unmarshal(w.body.Bytes(), &it); err != nil {
		b.Fatal(err)
	}
	get := []byte(`{"Limit":10000,"ShardIterator":"` + it.ShardIterator + `"}`)
	w.keep = false
	b.ReportAllocs()
	cpu0 := childproc.CPUTime(os.Getpid())
	for b.Loop() {
		call(b, srv, w, "GetRecords", get)
	}
	reportPerRecord(b, cpu0, 10000)
}
