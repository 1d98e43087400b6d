package sdkhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/ksp-project/ksp/internal/cborwire"
)

// getRecordsPage is a GetRecords answer of n records of size bytes each,
// as ksp's server writes it.
func getRecordsPage(n, size int) []byte {
	b := []byte(`{"MillisBehindLatest":0,"NextShardIterator":"AQAAAaI1lQeOAAABojWVCD8AAAAAAAAAAAAAAMhzLWgyYzl5MR1Km+cDCqBnvuxE7Xg=","Records":[`)
	data := bytes.Repeat([]byte{'d'}, size)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"ApproximateArrivalTimestamp":1796195289.070,"Data":"%s","PartitionKey":"key-%d","SequenceNumber":"4917961952889740000000000000000000000000%016d"}`,
			base64.StdEncoding.EncodeToString(data), i, i)
	}
	return append(b, "]}"...)
}

// getRecordsPageCBOR is getRecordsPage in CBOR.
func getRecordsPageCBOR(n, size int) []byte {
	b := cborwire.AppendHead(nil, cborwire.Map, 3)
	b = cborwire.AppendText(b, "MillisBehindLatest")
	b = cborwire.AppendInt(b, 0)
	b = cborwire.AppendText(b, "NextShardIterator")
	b = cborwire.AppendText(b, "AQAAAaI1lQeOAAABojWVCD8AAAAAAAAAAAAAAMhzLWgyYzl5MR1Km+cDCqBnvuxE7Xg=")
	b = cborwire.AppendText(b, "Records")
	b = cborwire.AppendHead(b, cborwire.Array, uint64(n))
	data := bytes.Repeat([]byte{'d'}, size)
	for i := range n {
		b = cborwire.AppendHead(b, cborwire.Map, 4)
		b = cborwire.AppendText(b, "ApproximateArrivalTimestamp")
		b = cborwire.AppendInt(cborwire.AppendHead(b, cborwire.Tag, 1), 1796195289070)
		b = cborwire.AppendText(b, "Data")
		b = append(cborwire.AppendHead(b, cborwire.Bytes, uint64(size)), data...)
		b = cborwire.AppendText(b, "PartitionKey")
		b = cborwire.AppendText(b, fmt.Sprintf("key-%d", i))
		b = cborwire.AppendText(b, "SequenceNumber")
		b = cborwire.AppendText(b, fmt.Sprintf("4917961952889740000000000000000000000000%016d", i))
	}
	return b
}

// BenchmarkGetRecordsDecode decodes a page of 10,000 records of 100 bytes
// and one of 200 aggregates of 50 KB with the SDK's codec and with
// FastCodecs', with its data in slabs of its own and lent by a SlabPool,
// and the same pages in CBOR with FastCodecsCBOR's (MB/s of answer in
// JSON; allocations per answer).
func BenchmarkGetRecordsDecode(b *testing.B) {
	sdk := awsjson.New11(schemas.Kinesis_20131202)
	fast := &fastProtocol{ClientProtocol: sdk}
	fastCBOR := &fastProtocol{ClientProtocol: sdk, cbor: true}
	for _, page := range []struct {
		name       string
		body, cbor []byte
	}{{"10000x100B", getRecordsPage(10000, 100), getRecordsPageCBOR(10000, 100)}, {"200x50KB", getRecordsPage(200, 50_000), getRecordsPageCBOR(200, 50_000)}} {
		for _, codec := range []struct {
			name  string
			p     smithyhttp.ClientProtocol
			slabs *SlabPool
		}{{"sdk", sdk, nil}, {"fast", fast, nil}, {"fast-slabs", fast, NewSlabPool(64 << 20)}, {"cbor-slabs", fastCBOR, NewSlabPool(64 << 20)}} {
			b.Run(page.name+"/"+codec.name, func(b *testing.B) {
				b.SetBytes(int64(len(page.body)))
				b.ReportAllocs()
				for b.Loop() {
					var out kinesis.GetRecordsOutput
					resp := response(200, page.body)
					if codec.p == fastCBOR {
						resp = response(200, page.cbor)
						resp.Header.Set("Content-Type", cborContentType)
					}
					resp.ContentLength = -1 // as ksp streams large answers
					slabs := codec.slabs.Slabs()
					if err := codec.p.DeserializeResponse(WithSlabs(context.Background(), slabs), getRecordsSchema, kinesis.TypeRegistry, resp, &out); err != nil {
						b.Fatal(err)
					}
					slabs.Release()
				}
			})
		}
	}
}

// BenchmarkPutRecordsEncode writes a PutRecords request of 500 records of
// 100 bytes and one of 10 aggregates of 50 KB, with the SDK's codec and
// FastCodecs' (the pooled buffer is released as after a call).
func BenchmarkPutRecordsEncode(b *testing.B) {
	sdk := awsjson.New11(schemas.Kinesis_20131202)
	fast := &fastProtocol{ClientProtocol: sdk}
	op := smithy.NewOperationSchema(schemas.PutRecords, schemas.PutRecordsInput, schemas.PutRecordsOutput)
	for _, shape := range []struct {
		name    string
		n, size int
	}{{"500x100B", 500, 100}, {"10x50KB", 10, 50_000}} {
		in := &kinesis.PutRecordsInput{StreamName: aws.String("stream")}
		for i := range shape.n {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(i)}, shape.size), PartitionKey: aws.String(fmt.Sprint("key-", i))})
		}
		for _, codec := range []struct {
			name string
			p    smithyhttp.ClientProtocol
		}{{"sdk", sdk}, {"fast", fast}} {
			b.Run(shape.name+"/"+codec.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					h := new(heldBuffers)
					ctx := context.WithValue(context.Background(), heldKey{}, h)
					req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
					if err := codec.p.SerializeRequest(ctx, op, in, req); err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, req.GetStream())
					b.SetBytes(n)
					h.release()
				}
			})
		}
	}
}
