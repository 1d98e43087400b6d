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

	"github.com/fxamacker/cbor/v2"
	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/store"
)

// discard is a ResponseWriter that keeps the status and drops the body, so
// the hot-path benchmarks measure the server and nothing of a client.
type discard struct {
	h      http.Header
	status int
	body   bytes.Buffer
	keep   bool
	cbor   bool // requests are CBOR, as the Java SDK sends them
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
	if w.cbor {
		req.Header.Set("Content-Type", "application/x-amz-cbor-1.1")
	}
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

func benchServer(b *testing.B, st store.Store) (http.Handler, *discard) {
	srv, err := server.New(server.Options{DisableLimits: true, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	h := srv.HTTPHandler()
	w := &discard{h: http.Header{}, keep: true}
	call(b, h, w, "CreateStream", []byte(`{"StreamName":"s","ShardCount":1}`))
	return h, w
}

// loop times op with body, which handles records records, and reports wall
// and CPU time (of the whole process: the collector's work included) per
// record. CPU time holds on a busy machine, where wall time does not.
func loop(b *testing.B, srv http.Handler, w *discard, op string, body []byte, records int) {
	w.keep = false
	b.ReportAllocs()
	cpu0 := childproc.CPUTime(os.Getpid())
	for b.Loop() {
		call(b, srv, w, op, body)
	}
	n := float64(b.N * records)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	if cpu := childproc.CPUTime(os.Getpid()) - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
	}
}

// BenchmarkServerPutRecords: the server's own cost of PutRecords of 500
// 100-byte records (decode, route, append, commit, answer), per record, on
// the memory store and on the disk store with each fsync policy.
func BenchmarkServerPutRecords(b *testing.B) {
	for _, name := range []string{"memory", "always", "interval"} {
		b.Run(name, func(b *testing.B) {
			var st store.Store
			if name != "memory" {
				policy, _ := store.ParseFsyncPolicy(name)
				d, err := store.OpenDisk(b.TempDir(), store.DiskOptions{Fsync: policy})
				if err != nil {
					b.Fatal(err)
				}
				st = d
			}
			srv, w := benchServer(b, st)
			loop(b, srv, w, "PutRecords", putRecordsBody("s", 500, 100), 500)
		})
	}
}

// BenchmarkServerGetRecords: the server's own cost of GetRecords of 10,000
// 100-byte records (read, encode, answer), per record.
func BenchmarkServerGetRecords(b *testing.B) {
	srv, w := benchServer(b, nil)
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
	loop(b, srv, w, "GetRecords", get, 10000)
}

// BenchmarkServerCBOR: BenchmarkServerPutRecords/memory and
// BenchmarkServerGetRecords with CBOR requests and answers, as the Java SDK
// (the KCL's and the KPL's) sends them.
func BenchmarkServerCBOR(b *testing.B) {
	records := make([]any, 500)
	for i := range records {
		records[i] = map[string]any{"Data": bytes.Repeat([]byte{'x'}, 100), "PartitionKey": fmt.Sprintf("pk-%d", i)}
	}
	put, err := cbor.Marshal(map[string]any{"StreamName": "s", "Records": records})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("PutRecords", func(b *testing.B) {
		srv, w := benchServer(b, nil)
		w.cbor = true
		loop(b, srv, w, "PutRecords", put, 500)
	})
	b.Run("GetRecords", func(b *testing.B) {
		srv, w := benchServer(b, nil)
		w.cbor = true
		for range 20 {
			call(b, srv, w, "PutRecords", put)
		}
		body, _ := cbor.Marshal(map[string]any{"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})
		call(b, srv, w, "GetShardIterator", body)
		var it struct{ ShardIterator string }
		if err := cbor.Unmarshal(w.body.Bytes(), &it); err != nil {
			b.Fatal(err)
		}
		get, _ := cbor.Marshal(map[string]any{"Limit": 10000, "ShardIterator": it.ShardIterator})
		loop(b, srv, w, "GetRecords", get, 10000)
	})
}
