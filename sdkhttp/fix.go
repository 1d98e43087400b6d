package sdkhttp

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// HTTPClient is what aws-sdk-go-v2 sends requests through
// (aws.HTTPClient, kinesis.HTTPClient and dynamodb.HTTPClient).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// Fix returns c wrapped so that net/http never sees the request body's
// WriteTo (see the package doc). Fixing a fixed client returns it as it is;
// a nil c stands for http.DefaultClient.
func Fix(c HTTPClient) HTTPClient {
	switch c := c.(type) {
	case nil:
		return fixed{http.DefaultClient}
	case fixed:
		return c
	default:
		return fixed{c}
	}
}

// FixKinesis is a per-operation option (or a kinesis.New option) that
// applies [Fix] to the client's HTTP client:
//
//	out, err := client.PutRecords(ctx, in, sdkhttp.FixKinesis)
func FixKinesis(o *kinesis.Options) { o.HTTPClient = Fix(o.HTTPClient) }

// FixDynamoDB is FixKinesis for DynamoDB clients.
func FixDynamoDB(o *dynamodb.Options) { o.HTTPClient = Fix(o.HTTPClient) }

type fixed struct{ next HTTPClient }

func (f fixed) Do(r *http.Request) (*http.Response, error) {
	if _, ok := r.Body.(io.WriterTo); ok && r.Body != http.NoBody {
		r = r.WithContext(r.Context()) // a shallow copy: the caller's request stays as it was
		r.Body = plainBody{r.Body}
	}
	return f.next.Do(r)
}

// plainBody has only Read and Close: the embedded interface hides WriteTo.
type plainBody struct{ io.ReadCloser }
