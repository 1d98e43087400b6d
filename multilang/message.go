package multilang

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
)

// The actions of the protocol, as the Java MultiLangDaemon names them
// (amazon-kinesis-client-multilang, package messages).
const (
	ActionInitialize        = "initialize"
	ActionProcessRecords    = "processRecords"
	ActionLeaseLost         = "leaseLost"
	ActionShardEnded        = "shardEnded"
	ActionShutdownRequested = "shutdownRequested"
	ActionCheckpoint        = "checkpoint"
	ActionStatus            = "status"
	// ActionShutdown is the KCL 1.x message that shardEnded and leaseLost
	// replaced; a child that sends it speaks the old protocol.
	ActionShutdown = "shutdown"
)

// ErrMalformed reports a line from the child that is JSON-shaped but is not
// a message of the protocol: it cannot be decoded, has no action, an action
// a child never sends, or a field of the wrong type.
var ErrMalformed = errors.New("multilang: malformed message from child")

// Message is a message a child sends: a status (done with an action) or a
// checkpoint request. SequenceNumber and SubSequenceNumber are nil when the
// child left them out or sent null.
type Message struct {
	Action            string
	ResponseFor       string // status
	SequenceNumber    *string
	SubSequenceNumber *int64
}

// childMessage is the wire form of Message; fields the protocol does not
// define are ignored (the Java daemon's Jackson would skip the whole line).
type childMessage struct {
	Action            *string         `json:"action"`
	ResponseFor       *string         `json:"responseFor"`
	SequenceNumber    json.RawMessage `json:"sequenceNumber"`
	SubSequenceNumber json.RawMessage `json:"subSequenceNumber"`
	Error             json.RawMessage `json:"error"` // echoed by some clients; ignored
}

// DecodeMessage decodes one line a child wrote. Errors match ErrMalformed
// and say which field was wrong and how.
func DecodeMessage(line []byte) (Message, error) {
	var w childMessage
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&w); err != nil {
		return Message{}, fmt.Errorf("%w: %v in %s", ErrMalformed, err, clip(line))
	}
	if d.More() {
		return Message{}, fmt.Errorf("%w: data after the JSON object in %s", ErrMalformed, clip(line))
	}
	if w.Action == nil {
		return Message{}, fmt.Errorf("%w: no action in %s", ErrMalformed, clip(line))
	}
	m := Message{Action: *w.Action}
	switch m.Action {
	case ActionStatus:
		if w.ResponseFor == nil || *w.ResponseFor == "" {
			return Message{}, fmt.Errorf("%w: status without responseFor in %s", ErrMalformed, clip(line))
		}
		m.ResponseFor = *w.ResponseFor
	case ActionCheckpoint:
		var err error
		if m.SequenceNumber, err = decodeSequence(w.SequenceNumber); err != nil {
			return Message{}, fmt.Errorf("%w: checkpoint sequenceNumber %s: %v", ErrMalformed, clip(w.SequenceNumber), err)
		}
		if m.SubSequenceNumber, err = decodeSubSequence(w.SubSequenceNumber); err != nil {
			return Message{}, fmt.Errorf("%w: checkpoint subSequenceNumber %s: %v", ErrMalformed, clip(w.SubSequenceNumber), err)
		}
	default:
		return Message{}, fmt.Errorf("%w: action %q is not one a child sends (status, checkpoint)", ErrMalformed, m.Action)
	}
	return m, nil
}

// decodeSequence accepts a string or null; a number is taken as its digits
// (Jackson coerces it the same way).
func decodeSequence(raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, errors.New("want a string or null")
	}
	if _, err := strconv.ParseUint(n.String(), 10, 64); err != nil {
		return nil, errors.New("want a string of digits or null")
	}
	s = n.String()
	return &s, nil
}

// decodeSubSequence accepts a non-negative integer, a string of digits, or
// null.
func decodeSubSequence(raw json.RawMessage) (*int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, errors.New("want an integer or null")
		}
		s = n.String()
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return nil, errors.New("want a non-negative integer or null")
	}
	return &v, nil
}

// clip quotes at most 200 bytes of b for an error message.
func clip(b []byte) string {
	if len(b) > 200 {
		return strconv.Quote(string(b[:200])) + "…"
	}
	return strconv.Quote(string(b))
}

// The messages the daemon sends, with the fields and nulls the Java daemon's
// Jackson writes: amazon_kclpy reads every field by key, so none may be
// left out.

type initializeMessage struct {
	Action            string  `json:"action"`
	ShardID           string  `json:"shardId"`
	SequenceNumber    *string `json:"sequenceNumber"`
	SubSequenceNumber *int64  `json:"subSequenceNumber"`
}

type processRecordsMessage struct {
	Action             string       `json:"action"`
	Records            []jsonRecord `json:"records"`
	MillisBehindLatest *int64       `json:"millisBehindLatest"`
}

// jsonRecord is the Java daemon's JsonFriendlyRecord: data in base64,
// the arrival time in epoch milliseconds, and an action of its own.
type jsonRecord struct {
	Action                      string `json:"action"`
	Data                        []byte `json:"data"` // base64 by encoding/json, as Jackson writes byte[]
	PartitionKey                string `json:"partitionKey"`
	SequenceNumber              string `json:"sequenceNumber"`
	SubSequenceNumber           int64  `json:"subSequenceNumber"`
	ApproximateArrivalTimestamp *int64 `json:"approximateArrivalTimestamp"`
}

type bareMessage struct {
	Action string `json:"action"`
}

type checkpointMessage struct {
	Action            string  `json:"action"`
	SequenceNumber    *string `json:"sequenceNumber"`
	SubSequenceNumber *int64  `json:"subSequenceNumber"`
	Error             *string `json:"error"`
}

func encodeInitialize(shardID string, cp lease.Checkpoint) []byte {
	m := initializeMessage{Action: ActionInitialize, ShardID: shardID}
	if !cp.IsZero() {
		seq, sub := cp.SequenceNumber, cp.SubSequenceNumber
		m.SequenceNumber, m.SubSequenceNumber = &seq, &sub
	}
	return mustLine(m)
}

func encodeProcessRecords(records []consumer.Record, millisBehind int64) []byte {
	m := processRecordsMessage{Action: ActionProcessRecords, Records: make([]jsonRecord, len(records)), MillisBehindLatest: &millisBehind}
	for i, r := range records {
		jr := jsonRecord{Action: "record", Data: r.Data, PartitionKey: r.PartitionKey, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
		if jr.Data == nil {
			jr.Data = []byte{} // "" rather than null: clients base64-decode it
		}
		if !r.ApproximateArrivalTimestamp.IsZero() {
			ms := r.ApproximateArrivalTimestamp.UnixMilli()
			jr.ApproximateArrivalTimestamp = &ms
		}
		m.Records[i] = jr
	}
	return mustLine(m)
}

func encodeBare(action string) []byte { return mustLine(bareMessage{Action: action}) }

// encodeCheckpointResult answers a checkpoint request, echoing what it asked
// for; errName is "" on success.
func encodeCheckpointResult(req Message, errName string) []byte {
	m := checkpointMessage{Action: ActionCheckpoint, SequenceNumber: req.SequenceNumber, SubSequenceNumber: req.SubSequenceNumber}
	if errName != "" {
		m.Error = &errName
	}
	return mustLine(m)
}

// mustLine encodes m as one line. The types above always encode.
func mustLine(m any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("multilang: encoding %T: %v", m, err))
	}
	return append(b, '\n')
}
