package server

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzPutRecordsFastPath checks the hand-written PutRecords decoder against
// encoding/json: whenever the fast path accepts a body, encoding/json must
// accept it too and decode exactly the same request.
func FuzzPutRecordsFastPath(f *testing.F) {
	f.Add([]byte(`{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k"},{"Data":"","PartitionKey":"é","ExplicitHashKey":"12"}]}`))
	f.Add([]byte(` { "Records" : [ ] , "StreamARN" : "arn:aws:kinesis:us-east-1:000000000000:stream/s" } `))
	f.Add([]byte(`{"StreamName":"s","Records":[{"PartitionKey":"k","Data":"aGk"}]}`))
	f.Add([]byte(`{"StreamName":"s\u0041","Records":null}`))
	f.Add([]byte(`{"StreamName": "s", "Records": [{"Data": "aGk=", "PartitionKey": "k1", "ExplicitHashKey": "1"}, {"Data": "", "PartitionKey":  "k2"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodePutRecordsJSON(body)
		if !ok {
			return
		}
		var slow putRecordsInput
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused: %v", body, err)
		}
		if !sameString(fast.StreamName, slow.StreamName) || !sameString(fast.StreamARN, slow.StreamARN) || len(fast.Records) != len(slow.Records) {
			t.Fatalf("fast %+v != slow %+v for %q", fast, slow, body)
		}
		for i := range fast.Records {
			a, b := fast.Records[i], slow.Records[i]
			if !bytes.Equal(a.Data, b.Data) || (a.Data == nil) != (b.Data == nil) || !sameString(a.PartitionKey, b.PartitionKey) || !sameString(a.ExplicitHashKey, b.ExplicitHashKey) {
				t.Fatalf("record %d: fast %+v != slow %+v for %q", i, a, b, body)
			}
		}
	})
}

func sameString(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func TestPutRecordsFastPathFallsBack(t *testing.T) {
	for _, body := range []string{
		`{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k\n"}]}`,
		`{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k\u0041"}]}`,
		`{"StreamName":null,"Records":[]}`,
		`{"StreamName":"s","Records":[{"Data":"a","PartitionKey":"k"}]}`,
		"{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"aGk=\n\",\"PartitionKey\":\"k\"}]}",
		`{"StreamName":"s","Records":[{"Data":"aGk\"=","PartitionKey":"k"}]}`,
		`{"StreamName":"s","Records":[{"PartitionKey":"k"}]}`,
		`{"StreamName":"s","Extra":1}`,
		`{"StreamName":"s"} x`,
		`{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k","Data":"aGk="}]}`,
	} {
		if _, ok := decodePutRecordsJSON([]byte(body)); ok {
			t.Errorf("fast path accepted %s", body)
		}
	}
	// Spaced as Python's json.dumps writes it (the AWS CLI).
	req, ok := decodePutRecordsJSON([]byte(`{"StreamName": "s", "Records": [{"Data": "aGk=", "PartitionKey": "k1", "ExplicitHashKey": "7"}, {"PartitionKey":  "k2", "Data": ""}]}`))
	if !ok || *req.StreamName != "s" || len(req.Records) != 2 || string(req.Records[0].Data) != "hi" || *req.Records[0].PartitionKey != "k1" ||
		*req.Records[0].ExplicitHashKey != "7" || *req.Records[1].PartitionKey != "k2" || req.Records[1].Data == nil || len(req.Records[1].Data) != 0 || req.Records[1].ExplicitHashKey != nil {
		t.Fatalf("decoded %+v", req)
	}
}
