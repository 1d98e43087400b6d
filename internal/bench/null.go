package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TargetNull is the client's ceiling: a server that does no work. It
// answers PutRecords with a prepared answer of the right shape (one result
// per entry, the entries counted, not decoded) and GetRecords with a
// prepared page of records, so the clients' own cost, and nothing of a
// server's, bounds its rates. Every ksp rate is reported as a fraction of it.
const TargetNull = "null"

// nullServer is the null target. It serves the calls the benchmark makes
// (CreateStream, DescribeStream, ListShards, PutRecords, GetShardIterator,
// GetRecords) on HTTP/1.1 and h2c, and keeps per shard only a count of the
// entries put, so that a drain reads back as many records as were put.
type nullServer struct {
	size int // data bytes of every record served
	ln   net.Listener
	hs   *http.Server
	done chan struct{}

	shards atomic.Pointer[[]atomic.Int64] // entries put per shard of the current stream
	next   atomic.Uint64                  // round-robin shard of the next PutRecords

	putAnswers sync.Map // "entries/shard" -> prepared PutRecords answer
	page       []byte   // a GetRecords page of readLimit records, comma separated
	ends       []int    // ends[k]: the length of the first k records of page
	bufs       sync.Pool
}

// A sequence number as long as Kinesis's, so answers weigh what real ones do.
const nullSeq = "49651234567890123456789012345678901234567890123456789012"

func startNullServer(size int) (*nullServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &nullServer{size: size, ln: ln, done: make(chan struct{})}
	n.bufs.New = func() any { return new(bytes.Buffer) }
	n.preparePage()
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	n.hs = &http.Server{Handler: n, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(n.done)
		n.hs.Serve(ln)
	}()
	return n, nil
}

func (n *nullServer) URL() string { return "http://" + n.ln.Addr().String() }

func (n *nullServer) Close() {
	n.hs.Close()
	<-n.done
}

// preparePage builds the records of a full GetRecords page once.
func (n *nullServer) preparePage() {
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, n.size))
	n.ends = make([]int, readLimit+1)
	var b []byte
	for i := range readLimit {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ApproximateArrivalTimestamp":1.764633600123E9,"Data":"`...)
		b = append(b, data...)
		b = append(b, `","PartitionKey":"pk-`...)
		b = strconv.AppendInt(b, int64(100000+i), 10)
		b = append(b, `","SequenceNumber":"`...)
		b = append(b, nullSeq...)
		b = append(b, `"}`...)
		n.ends[i+1] = len(b)
	}
	n.page = b
}

func (n *nullServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := n.bufs.Get().(*bytes.Buffer)
	defer n.bufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body := buf.Bytes()
	_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "PutRecords":
		n.putRecords(w, body)
	case "GetRecords":
		n.getRecords(w, body)
	case "GetShardIterator":
		n.getShardIterator(w, body)
	case "CreateStream":
		n.createStream(w, body)
	case "DescribeStream", "DescribeStreamSummary", "ListShards":
		n.describe(w, op)
	default:
		w.Header().Set("X-Amzn-ErrorType", "UnknownOperationException")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"UnknownOperationException","message":"the null target answers only what the benchmark calls"}`)
	}
}

// createStream starts counting again for a stream of ShardCount shards: the
// benchmark makes its warm-up stream first, then the measured one.
func (n *nullServer) createStream(w http.ResponseWriter, body []byte) {
	var req struct{ ShardCount int }
	if err := json.Unmarshal(body, &req); err != nil || req.ShardCount < 1 {
		req.ShardCount = 1
	}
	counts := make([]atomic.Int64, req.ShardCount)
	n.shards.Store(&counts)
	io.WriteString(w, "{}")
}

func (n *nullServer) shardCount() int {
	if p := n.shards.Load(); p != nil {
		return len(*p)
	}
	return 0
}

func (n *nullServer) counter(shard int) *atomic.Int64 {
	p := n.shards.Load()
	if p == nil || shard < 0 || shard >= len(*p) {
		return nil
	}
	return &(*p)[shard]
}

func (n *nullServer) describe(w http.ResponseWriter, op string) {
	type shard struct {
		ShardId             string
		HashKeyRange        struct{ StartingHashKey, EndingHashKey string }
		SequenceNumberRange struct{ StartingSequenceNumber string }
	}
	shards := make([]shard, n.shardCount())
	for i := range shards {
		shards[i].ShardId = shardName(i)
		shards[i].HashKeyRange.StartingHashKey, shards[i].HashKeyRange.EndingHashKey = "0", "340282366920938463463374607431768211455"
		shards[i].SequenceNumberRange.StartingSequenceNumber = nullSeq
	}
	var out any
	switch op {
	case "ListShards":
		out = map[string]any{"Shards": shards}
	case "DescribeStreamSummary":
		out = map[string]any{"StreamDescriptionSummary": map[string]any{
			"StreamName": streamName, "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/" + streamName,
			"StreamStatus": "ACTIVE", "OpenShardCount": len(shards), "RetentionPeriodHours": 24,
			"StreamCreationTimestamp": 1.7646336e9, "EnhancedMonitoring": []any{}, "ConsumerCount": 0,
		}}
	default:
		out = map[string]any{"StreamDescription": map[string]any{
			"StreamName": streamName, "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/" + streamName,
			"StreamStatus": "ACTIVE", "Shards": shards, "HasMoreShards": false, "RetentionPeriodHours": 24,
			"StreamCreationTimestamp": 1.7646336e9, "EnhancedMonitoring": []any{},
		}}
	}
	json.NewEncoder(w).Encode(out)
}

func shardName(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// putRecords counts the entries (each has one PartitionKey member), picks a
// shard round-robin and writes the prepared answer for that many entries.
func (n *nullServer) putRecords(w http.ResponseWriter, body []byte) {
	entries := bytes.Count(body, []byte(`"PartitionKey"`))
	shards := n.shardCount()
	if shards == 0 {
		shards = 1
	}
	shard := int(n.next.Add(1) % uint64(shards))
	if c := n.counter(shard); c != nil {
		c.Add(int64(entries))
	}
	key := strconv.Itoa(entries) + "/" + strconv.Itoa(shard)
	ans, ok := n.putAnswers.Load(key)
	if !ok {
		var b []byte
		b = append(b, `{"EncryptionType":"NONE","FailedRecordCount":0,"Records":[`...)
		for i := range entries {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"SequenceNumber":"`...)
			b = append(b, nullSeq...)
			b = append(b, `","ShardId":"`...)
			b = append(b, shardName(shard)...)
			b = append(b, `"}`...)
		}
		ans, _ = n.putAnswers.LoadOrStore(key, append(b, "]}"...))
	}
	w.Write(ans.([]byte))
}

// An iterator is "null.SHARD.REMAINING": the records left to read.
func (n *nullServer) getShardIterator(w http.ResponseWriter, body []byte) {
	var req struct{ ShardId string }
	json.Unmarshal(body, &req)
	shard, _ := strconv.Atoi(strings.TrimPrefix(req.ShardId, "shardId-"))
	left := int64(0)
	if c := n.counter(shard); c != nil {
		left = c.Load()
	}
	fmt.Fprintf(w, `{"ShardIterator":"null.%d.%d"}`, shard, left)
}

// getRecords answers the next page: up to Limit of the records left.
func (n *nullServer) getRecords(w http.ResponseWriter, body []byte) {
	iter := jsonStringField(body, "ShardIterator")
	shardStr, leftStr, _ := strings.Cut(strings.TrimPrefix(iter, "null."), ".")
	left, _ := strconv.Atoi(leftStr)
	k := min(left, readLimit)
	if lim := jsonIntField(body, "Limit"); lim > 0 {
		k = min(k, lim)
	}
	buf := n.bufs.Get().(*bytes.Buffer)
	defer n.bufs.Put(buf)
	buf.Reset()
	buf.WriteString(`{"MillisBehindLatest":0,"NextShardIterator":"null.`)
	buf.WriteString(shardStr)
	buf.WriteByte('.')
	buf.WriteString(strconv.Itoa(left - k))
	buf.WriteString(`","Records":[`)
	w.Write(buf.Bytes())
	w.Write(n.page[:n.ends[k]])
	io.WriteString(w, "]}")
}

// jsonStringField finds "name":"value" in a small flat JSON body.
func jsonStringField(body []byte, name string) string {
	key := `"` + name + `":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// jsonIntField finds "name":123 in a small flat JSON body (0 when absent).
func jsonIntField(body []byte, name string) int {
	key := `"` + name + `":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0
	}
	rest := body[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	v, _ := strconv.Atoi(string(rest[:j]))
	return v
}

// ServeNull runs the null target until ctx ends, after printing the line
// "null server listening on URL" to out.
func ServeNull(ctx context.Context, size int, out io.Writer) error {
	n, err := startNullServer(size)
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintf(out, "null server listening on %s\n", n.URL())
	<-ctx.Done()
	return nil
}
