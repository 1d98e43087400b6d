package sink_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
	"github.com/ksp-project/ksp/sink"
)

func TestFileAppendsWholeSyncedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.jsonl")
	f, err := sink.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			body := fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, strings.Repeat("x", 4096))
			if err := f.Send(t.Context(), sink.Message{Body: body}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := f.Send(t.Context(), sink.Message{Body: []byte("{}")}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Send after Close: %v", err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, `{"n":`) || !strings.HasSuffix(line, `"}`) || len(line) < 4096 {
			t.Fatalf("torn line: %.80s", line)
		}
		seen[line[:10]] = true
	}
	if len(seen) != 20 {
		t.Fatalf("%d distinct lines, want 20", len(seen))
	}
}

// Every sink refuses a body over its MaxSize before any I/O, with
// ErrTooLarge; nil clients prove no call was made.
func TestTooLargeRefusedBeforeIO(t *testing.T) {
	big := sink.Message{Body: make([]byte, sink.MaxKinesisRecord)}
	for _, s := range []sink.Sink{
		sink.NewSQS(nil, "q"), sink.NewSNS(nil, "t"), sink.NewKinesis(nil, "s"),
		sink.Limit(sink.Func(func(context.Context, sink.Message) error { panic("called") }), 100),
	} {
		if s.MaxSize() <= 0 || s.MaxSize() >= len(big.Body) {
			t.Fatalf("%T: MaxSize %d", s, s.MaxSize())
		}
		if err := s.Send(t.Context(), big); !errors.Is(err, sink.ErrTooLarge) {
			t.Fatalf("%T: %v, want ErrTooLarge", s, err)
		}
	}
	if n := sink.Limit(sink.NewSQS(nil, "q"), 1<<20).MaxSize(); n != sink.MaxSQSMessage {
		t.Fatalf("Limit above the sink's own limit: MaxSize %d, want %d", n, sink.MaxSQSMessage)
	}
}

func TestHTTPNon2xxFails(t *testing.T) {
	codes := []int{http.StatusServiceUnavailable, http.StatusNoContent}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(codes[0])
		codes = codes[1:]
	}))
	t.Cleanup(srv.Close)
	s := sink.NewHTTP(srv.Client(), srv.URL)
	if err := s.Send(t.Context(), sink.Message{Body: []byte("{}")}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("first send: %v, want the 503", err)
	}
	if err := s.Send(t.Context(), sink.Message{Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
}

// Kinesis and Producer put each message into the stream keyed by its Key.
func TestKinesisAndProducerPutKeyed(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	servertest.CreateStream(t, client, "dead", 1)
	p, err := producer.New(client, "dead", producer.MaxBufferedTime(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	for i, s := range []sink.Sink{sink.NewKinesis(client, "dead"), sink.NewProducer(p)} {
		if err := s.Send(t.Context(), sink.Message{Body: fmt.Appendf(nil, `{"i":%d}`, i), Key: fmt.Sprint("shardId-", i)}); err != nil {
			t.Fatalf("%T: %v", s, err)
		}
	}
	recs := servertest.ReadShard(t, client, "dead", "shardId-000000000000")
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for i, r := range recs {
		if string(r.Data) != fmt.Sprintf(`{"i":%d}`, i) || *r.PartitionKey != fmt.Sprint("shardId-", i) {
			t.Fatalf("record %d: %s keyed %s", i, r.Data, *r.PartitionKey)
		}
	}
}
