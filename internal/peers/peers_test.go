package peers

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPeersStartAndAnswer(t *testing.T) {
	t.Parallel()
	for _, kind := range []Kind{Kinesalite, Dynalite, KinesisMock} {
		t.Run(string(kind), func(t *testing.T) {
			p := StartT(t, kind, Options{})
			target := "Kinesis_20131202.ListStreams"
			if kind == Dynalite {
				target = "DynamoDB_20120810.ListTables"
			}
			req, _ := http.NewRequest("POST", p.URL, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			if kind == Dynalite {
				req.Header.Set("Content-Type", "application/x-amz-json-1.0")
			}
			req.Header.Set("X-Amz-Target", target)
			req.Header.Set("X-Amz-Date", "20260101T000000Z")
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s answered %d: %s", kind, resp.StatusCode, body)
			}
			if p.RSS() <= 0 {
				t.Fatalf("no RSS for %s", kind)
			}
			p.Close()
			p.Close()
		})
	}
}
