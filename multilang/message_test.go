package multilang

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
)

func ptr[T any](v T) *T { return &v }

// TestDecodeMessage decodes what aws-kcl and amazon_kclpy send, and
// refuses what no child may send, saying which field was wrong.
func TestDecodeMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		want Message
		err  string // "" for success
	}{
		{`{"action":"status","responseFor":"initialize"}`, Message{Action: "status", ResponseFor: "initialize"}, ""},
		// aws-kcl: checkpoint() leaves sequenceNumber out, or sends null.
		{`{"action":"checkpoint"}`, Message{Action: "checkpoint"}, ""},
		{`{"action":"checkpoint","sequenceNumber":null}`, Message{Action: "checkpoint"}, ""},
		// amazon_kclpy: both keys, null or set.
		{`{"action": "checkpoint", "sequenceNumber": null, "subSequenceNumber": null}`, Message{Action: "checkpoint"}, ""},
		{`{"action": "checkpoint", "sequenceNumber": "4917", "subSequenceNumber": 3}`,
			Message{Action: "checkpoint", SequenceNumber: ptr("4917"), SubSequenceNumber: ptr(int64(3))}, ""},
		{`{"action":"checkpoint","sequenceNumber":4917,"subSequenceNumber":"3"}`,
			Message{Action: "checkpoint", SequenceNumber: ptr("4917"), SubSequenceNumber: ptr(int64(3))}, ""},
		{`{"action":"status","responseFor":"processRecords","extra":[1,2]}`, Message{Action: "status", ResponseFor: "processRecords"}, ""},

		{`{"action": "status", "responseFor": `, Message{}, "unexpected EOF"},
		{`{"responseFor":"initialize"}`, Message{}, "no action"},
		{`{"action":"status"}`, Message{}, "status without responseFor"},
		{`{"action":"initialize","shardId":"x"}`, Message{}, `action "initialize" is not one a child sends`},
		{`{"action":"checkpoint","sequenceNumber":[1]}`, Message{}, "checkpoint sequenceNumber \"[1]\": want a string or null"},
		{`{"action":"checkpoint","sequenceNumber":-4}`, Message{}, "want a string of digits"},
		{`{"action":"checkpoint","subSequenceNumber":-1}`, Message{}, "subSequenceNumber \"-1\": want a non-negative integer"},
		{`{"action":"checkpoint","subSequenceNumber":1.5}`, Message{}, "want a non-negative integer"},
		{`{"action":"status","responseFor":"x"} {}`, Message{}, "data after the JSON object"},
		{`{"action":7}`, Message{}, "cannot unmarshal"},
	} {
		got, err := DecodeMessage([]byte(tc.line))
		if tc.err != "" {
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("DecodeMessage(%s) = %v, want ErrMalformed saying %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("DecodeMessage(%s): %v", tc.line, err)
			continue
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(tc.want)
		if string(gj) != string(wj) {
			t.Errorf("DecodeMessage(%s) = %s, want %s", tc.line, gj, wj)
		}
	}
}

// TestEncodedShapes checks the daemon's messages field by field against the
// Java daemon's (Jackson's) output: every field present, nulls included,
// data in base64, arrival in epoch milliseconds.
func TestEncodedShapes(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1700000000123)
	for _, tc := range []struct {
		got  []byte
		want string
	}{
		{encodeInitialize("shardId-000000000001", lease.TrimHorizon),
			`{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}`},
		{encodeInitialize("shardId-000000000001", lease.Checkpoint{SequenceNumber: "49", SubSequenceNumber: 4}),
			`{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"49","subSequenceNumber":4}`},
		{encodeInitialize("s", lease.Checkpoint{}), `{"action":"initialize","shardId":"s","sequenceNumber":null,"subSequenceNumber":null}`},
		{encodeProcessRecords([]consumer.Record{
			{Data: []byte("hi"), PartitionKey: "k", SequenceNumber: "49", SubSequenceNumber: 2, ApproximateArrivalTimestamp: at},
			{PartitionKey: "k2", SequenceNumber: "50"},
		}, 1500),
			`{"action":"processRecords","records":[` +
				`{"action":"record","data":"aGk=","partitionKey":"k","sequenceNumber":"49","subSequenceNumber":2,"approximateArrivalTimestamp":1700000000123},` +
				`{"action":"record","data":"","partitionKey":"k2","sequenceNumber":"50","subSequenceNumber":0,"approximateArrivalTimestamp":null}` +
				`],"millisBehindLatest":1500}`},
		{encodeBare(ActionShardEnded), `{"action":"shardEnded"}`},
		{encodeCheckpointResult(Message{Action: "checkpoint", SequenceNumber: ptr("49")}, ""),
			`{"action":"checkpoint","sequenceNumber":"49","subSequenceNumber":null,"error":null}`},
		{encodeCheckpointResult(Message{Action: "checkpoint"}, excShutdown),
			`{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}`},
	} {
		if string(tc.got) != tc.want+"\n" {
			t.Errorf("encoded\n%s\nwant\n%s", tc.got, tc.want)
		}
	}
}

// TestExceptionNames maps checkpoint errors to the KCL's exception names.
func TestExceptionNames(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		nil:                            "",
		consumer.ErrLeaseLost:          "ShutdownException",
		consumer.ErrShutdown:           "ShutdownException",
		consumer.ErrInvalidCheckpoint:  "IllegalArgumentException",
		lease.ErrThrottled:             "ThrottlingException",
		errors.New("dynamodb is down"): "KinesisClientLibDependencyException",
		lease.ErrConditionFailed:       "KinesisClientLibDependencyException",
	} {
		if got := exceptionName(err); got != want {
			t.Errorf("exceptionName(%v) = %q, want %q", err, got, want)
		}
	}
}

// FuzzDecodeMessage: any line decodes or fails with ErrMalformed, never
// panics, and a decoded message re-encodes as a checkpoint answer.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"action":"status","responseFor":"initialize"}`,
		`{"action":"checkpoint","sequenceNumber":"4917","subSequenceNumber":3}`,
		`{"action":"checkpoint","sequenceNumber":null}`,
		`{"action":"checkpoint","subSequenceNumber":"12"}`,
		`{"action": "status", "responseFor": `,
		`[]`, `null`, `{"action":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := DecodeMessage(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		if m.Action != ActionStatus && m.Action != ActionCheckpoint {
			t.Fatalf("decoded action %q", m.Action)
		}
		if m.SubSequenceNumber != nil && *m.SubSequenceNumber < 0 {
			t.Fatalf("negative sub-sequence number %d", *m.SubSequenceNumber)
		}
		if !json.Valid(encodeCheckpointResult(m, "")) {
			t.Fatal("checkpoint answer is not JSON")
		}
	})
}
