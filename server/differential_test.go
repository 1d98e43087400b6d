package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// TestDifferentialKinesalite sends the same raw HTTP requests to ksp and to
// kinesalite (which copies AWS's validation rules and messages closely) and
// compares, request by request, the HTTP status, the __type of errors and the
// shape (the set of JSON keys, recursively; lists by element shape) of
// successful responses. Steps run in order on both servers, so later steps
// use the streams, sequence numbers and iterators of earlier ones, each
// server its own.
//
// Every difference ksp shows on purpose is listed in differentialOutcomes or
// differentialShapes with its reason; any other difference fails the test,
// and so does a listed difference that no longer occurs (remove the entry).
// Entries whose reason starts with "TODO(ksp bug)" are places where ksp is
// wrong; they go once ksp is fixed.
func TestDifferentialKinesalite(t *testing.T) {
	peer := peers.StartT(t, peers.Kinesalite, peers.Options{})
	// Limits off: kinesalite never throttles, and the steps read shard 0
	// more often than AWS's 5 GetRecords calls per second allow.
	srv := servertest.Start(t, server.Options{DisableLimits: true})

	targets := []*diffTarget{
		{name: "ksp", url: srv.URL(), vars: map[string]string{}},
		{name: "kinesalite", url: peer.URL, vars: map[string]string{}},
	}
	client := &http.Client{Timeout: 30 * time.Second}

	outcomeDiffs := map[string]outcomeDiff{}
	for _, d := range differentialOutcomes {
		if _, dup := outcomeDiffs[d.step]; dup {
			t.Fatalf("differentialOutcomes lists step %q twice", d.step)
		}
		outcomeDiffs[d.step] = d
	}
	usedOutcome := map[string]bool{}
	usedShape := map[int]bool{}

	steps := differentialSteps()
	names := map[string]bool{}
	for _, st := range steps {
		if names[st.name] {
			t.Fatalf("step name %q is used twice", st.name)
		}
		names[st.name] = true
	}
	for _, d := range differentialOutcomes {
		if !names[d.step] {
			t.Errorf("differentialOutcomes names unknown step %q", d.step)
		}
	}

	for _, st := range steps {
		var outs [2]outcome
		ok := true
		for i, tg := range targets {
			out, err := tg.send(client, st)
			if err != nil {
				t.Errorf("step %q on %s: %v", st.name, tg.name, err)
				ok = false
				continue
			}
			outs[i] = out
			if out.status == http.StatusOK {
				for v, path := range st.capture {
					val, err := jsonPath(out.body, path)
					if err != nil {
						t.Errorf("step %q on %s: capturing %s from %s: %v", st.name, tg.name, v, path, err)
						continue
					}
					tg.vars[v] = val
				}
			}
			if st.waitActive != "" {
				tg.waitStatus(t, client, st.waitActive, true)
			}
			if st.waitGone != "" {
				tg.waitStatus(t, client, st.waitGone, false)
			}
		}
		if !ok {
			continue
		}
		k, p := outs[0], outs[1]
		detail := func() string {
			return fmt.Sprintf("\n  request: %s %s\n  ksp:        %s %s\n  kinesalite: %s %s",
				st.op, clip(st.body), k, clip(string(k.body)), p, clip(string(p.body)))
		}
		if d, listed := outcomeDiffs[st.name]; listed {
			usedOutcome[st.name] = true
			if k.String() != d.ksp || p.String() != d.peer {
				t.Errorf("step %q: listed difference (ksp %s, kinesalite %s: %s) no longer matches; got ksp %s, kinesalite %s; update or remove the entry%s",
					st.name, d.ksp, d.peer, d.reason, k, p, detail())
			}
			continue
		}
		if k.String() != p.String() {
			t.Errorf("step %q: unlisted difference: ksp %s, kinesalite %s%s", st.name, k, p, detail())
			continue
		}
		if k.status != http.StatusOK {
			continue
		}
		for _, side := range []struct {
			only     string
			have, of []string
		}{{"ksp", k.shape, p.shape}, {"kinesalite", p.shape, k.shape}} {
			for _, path := range missingFrom(side.have, side.of) {
				i := findShapeDiff(st.op, side.only, path)
				if i < 0 {
					t.Errorf("step %q: unlisted shape difference: %s only in %s's response%s", st.name, path, side.only, detail())
					continue
				}
				usedShape[i] = true
			}
		}
	}

	for _, d := range differentialOutcomes {
		if names[d.step] && !usedOutcome[d.step] {
			t.Errorf("differentialOutcomes entry for step %q was not checked", d.step)
		}
	}
	for i, d := range differentialShapes {
		if !usedShape[i] {
			t.Errorf("differentialShapes entry %s %s (only in %s) no longer occurs; remove it", d.op, d.path, d.only)
		}
	}
}

// outcomeDiff is a request on which ksp and kinesalite answer differently on
// purpose (or, with a TODO(ksp bug) reason, where ksp is wrong for now).
type outcomeDiff struct {
	step   string // diffStep.name
	ksp    string // ksp's outcome: "200" or "400 SomeException"
	peer   string // kinesalite's outcome
	reason string
}

var differentialOutcomes = []outcomeDiff{
	// Protocol.
	{"body JSON array", "400 SerializationException", "400 ValidationException",
		"kinesalite quirk: it accepts any JSON object type, arrays included, and then finds StreamName missing; a list is not a structure, so SerializationException is right"},
	{"DescribeLimits", "200", "400 UnknownOperationException",
		"kinesalite predates DescribeLimits; ksp implements it"},
	{"UpdateShardCount", "400 ResourceNotFoundException", "400 UnknownOperationException",
		"kinesalite lacks UpdateShardCount; ksp implements it (and the stream named does not exist)"},
	{"EnableEnhancedMonitoring", "400 ResourceNotFoundException", "400 UnknownOperationException",
		"kinesalite lacks EnableEnhancedMonitoring; ksp implements it (and the stream named does not exist)"},
	{"no Authorization header", "200", "400 MissingAuthenticationTokenException",
		"ksp does not check signatures or their presence, like other local emulators, so unsigned tools (curl) work"},

	// StreamARN addressing made StreamName optional in the current API model.
	{"DescribeStream without StreamName", "400 InvalidArgumentException", "400 ValidationException",
		"StreamName is optional since StreamARN addressing (2023); with neither, ksp answers InvalidArgumentException as AWS does, kinesalite still requires StreamName"},
	{"DescribeStream by StreamARN", "200", "400 ValidationException",
		"kinesalite has no StreamARN addressing and still requires StreamName"},
	{"DeleteStream without StreamName", "400 InvalidArgumentException", "400 ValidationException",
		"StreamName is optional since StreamARN addressing; see DescribeStream without StreamName"},
	{"PutRecords without StreamName", "400 InvalidArgumentException", "400 ValidationException",
		"StreamName is optional since StreamARN addressing; see DescribeStream without StreamName"},
	{"GetShardIterator without StreamName", "400 InvalidArgumentException", "400 ValidationException",
		"StreamName is optional since StreamARN addressing; see DescribeStream without StreamName"},

	// Newer AWS limits and modes.
	{"CreateStream without ShardCount", "400 InvalidArgumentException", "400 ValidationException",
		"ShardCount is optional since on-demand streams (2021); a PROVISIONED stream without it is InvalidArgumentException, kinesalite still requires it"},
	{"CreateStream over the account shard quota", "200", "400 LimitExceededException",
		"kinesalite's default account quota is 10 shards, ksp's is AWS's 500"},
	{"IncreaseStreamRetentionPeriod 200 hours", "200", "400 ValidationException",
		"AWS raised the maximum retention from 168 hours to 8760 (365 days) in 2020; kinesalite still stops at 168"},
	{"ListTagsForStream Limit 11", "200", "400 ValidationException",
		"AWS's ListTagsForStream Limit is 1..50; kinesalite has the old 1..10"},
	{"RemoveTagsFromStream 11 keys", "200", "400 ValidationException",
		"AWS's RemoveTagsFromStream takes 1..50 TagKeys; kinesalite has the old 1..10"},
	{"PutRecord Data plus key over 1 MiB", "400 InvalidArgumentException", "200",
		"AWS counts data + partition key against the 1 MiB record limit; kinesalite only checks the data"},

	{"CreateStream tags with invalid characters", "400 InvalidArgumentException", "200",
		"CreateStream takes Tags since 2022 (kinesalite ignores the member); ksp applies AddTagsToStream's character rules to them"},

	// kinesalite shortcuts.
	{"GetShardIterator AT_TIMESTAMP with sequence number", "400 InvalidArgumentException", "200",
		"kinesalite treats any iterator type given a StartingSequenceNumber, AT_TIMESTAMP included, as AFTER_SEQUENCE_NUMBER; AWS rejects the combination"},
	{"AddTagsToStream past 50 tags", "400 LimitExceededException", "400 InvalidArgumentException",
		"AWS documents LimitExceededException for too many tags on a stream (kinesalite's own message for this case even names the old limit of 10)"},

	{"PutRecord ExplicitHashKey negative", "400 ValidationException", "400 InvalidArgumentException",
		"kinesalite anchors the pattern 0|([1-9]\\d{0,38}) as ^0|([1-9]\\d{0,38})$ (alternation ungrouped), so \"-1\" passes validation there; AWS matches the whole value and answers ValidationException"},
	{"PutRecord ExplicitHashKey leading zero", "400 ValidationException", "200",
		"kinesalite's ungrouped ^0|...$ pattern lets \"01\" through; it does not match 0|([1-9]\\d{0,38}), so AWS answers ValidationException"},
	{"PutRecords entry ExplicitHashKey not a number", "400 ValidationException", "400 InvalidArgumentException",
		"kinesalite's ungrouped ^0|...$ pattern lets \"x1\" through to its range check; AWS answers ValidationException"},
	{"GetShardIterator sequence number leading zero", "400 ValidationException", "400 InvalidArgumentException",
		"kinesalite's ungrouped ^0|([1-9]\\d{0,128})$ pattern lets \"0123\" through; AWS answers ValidationException"},
}

// shapeDiff is a key one server's successful response has and the other's
// lacks. A path covers its children: "StreamDescription.StreamModeDetails"
// covers "StreamDescription.StreamModeDetails.StreamMode".
type shapeDiff struct {
	op, path, only, reason string
}

var differentialShapes = []shapeDiff{
	{"DescribeStream", "StreamDescription.StreamModeDetails", "ksp", "stream modes (2021) postdate kinesalite"},
	{"DescribeStream", "StreamDescription.MaxRecordSizeInKiB", "ksp", "UpdateMaxRecordSize (2025) postdates kinesalite"},
	{"DescribeStreamSummary", "StreamDescriptionSummary.StreamModeDetails", "ksp", "stream modes (2021) postdate kinesalite"},
	{"DescribeStreamSummary", "StreamDescriptionSummary.MaxRecordSizeInKiB", "ksp", "UpdateMaxRecordSize (2025) postdates kinesalite"},
	{"ListStreams", "StreamSummaries", "ksp", "ListStreams returns StreamSummaries since 2022; kinesalite predates them"},
	{"ListStreams", "NextToken", "ksp", "ListStreams pages with NextToken since 2022; kinesalite predates it"},
	{"ListShards", "NextToken", "ksp", "kinesalite ignores MaxResults (its ListShards paging is a TODO), so it never returns NextToken"},
	{"PutRecord", "EncryptionType", "ksp", "AWS returns EncryptionType since server-side encryption (2017); kinesalite omits it"},
	{"PutRecords", "EncryptionType", "ksp", "AWS returns EncryptionType since server-side encryption (2017); kinesalite omits it"},
}

func findShapeDiff(op, only, path string) int {
	for i, d := range differentialShapes {
		if d.op == op && d.only == only &&
			(path == d.path || strings.HasPrefix(path, d.path+"=") || strings.HasPrefix(path, d.path+".") || strings.HasPrefix(path, d.path+"[]")) {
			return i
		}
	}
	return -1
}

// diffStep is one raw request. Bodies may hold {{var}} placeholders, filled
// from values captured from earlier responses of the same server, and
// {{var:tamper}} (one base64 character changed) or {{var:trunc}} (the last
// four characters cut).
type diffStep struct {
	name       string
	op         string            // X-Amz-Target is Kinesis_20131202.<op>
	body       string            // request body
	headers    map[string]string // header overrides; "" removes the header
	capture    map[string]string // variable -> dotted path in a 200 response
	waitActive string            // after the step, wait until this stream is ACTIVE
	waitGone   string            // after the step, wait until this stream is gone
}

const (
	diffStream = "ksp-diff"
	goneStream = "ksp-diff-gone"
	// 2^128 - 1 and 2^128: the last hash key and one past it.
	maxHashKey  = "340282366920938463463374607431768211455"
	overHashKey = "340282366920938463463374607431768211456"
)

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func differentialSteps() []diffStep {
	s := func(name, op, body string) diffStep { return diffStep{name: name, op: op, body: body} }
	mainRef := `"StreamName":"` + diffStream + `"`
	gone := `"StreamName":"` + goneStream + `"`
	withMain := func(rest string) string {
		if rest == "" {
			return "{" + mainRef + "}"
		}
		return "{" + mainRef + "," + rest + "}"
	}
	records := func(n int) string {
		recs := make([]map[string]string, n)
		for i := range recs {
			recs[i] = map[string]string{"Data": "eA==", "PartitionKey": fmt.Sprint("k", i)}
		}
		return jsonText(map[string]any{"StreamName": diffStream, "Records": recs})
	}
	tags := func(stream, prefix string, n int) string {
		m := map[string]string{}
		for i := 0; i < n; i++ {
			m[fmt.Sprintf("%s%02d", prefix, i)] = "v"
		}
		return jsonText(map[string]any{"StreamName": stream, "Tags": m})
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	bigData := func(n int) string {
		return jsonText(map[string]any{"StreamName": goneStream, "PartitionKey": "k", "Data": bytes.Repeat([]byte{'d'}, n)})
	}

	steps := []diffStep{
		// Protocol and envelope.
		s("malformed JSON", "ListStreams", `{"Limit":`),
		s("empty body", "ListStreams", ``),
		s("whitespace body", "ListStreams", "  \n"),
		s("body JSON null", "ListStreams", `null`),
		s("body JSON array", "DescribeStream", `[]`),
		s("body JSON string", "ListStreams", `"ListStreams"`),
		s("trailing data after the object", "ListStreams", `{} x`),
		s("unknown members are ignored", "ListStreams", `{"Bogus":1,"Limit":5}`),
		s("unknown operation", "Bogus", `{}`),
		s("unknown operation with empty body", "Bogus", ``),
		s("DescribeLimits", "DescribeLimits", `{}`),
		s("UpdateShardCount", "UpdateShardCount", `{"StreamName":"ksp-diff-missing","TargetShardCount":2,"ScalingType":"UNIFORM_SCALING"}`),
		// kinesalite lacks enhanced monitoring; ksp implements it.
		s("EnableEnhancedMonitoring", "EnableEnhancedMonitoring", `{"StreamName":"ksp-diff-missing","ShardLevelMetrics":["ALL"]}`),
		{name: "wrong API version", op: "ListStreams", body: `{}`, headers: map[string]string{"X-Amz-Target": "Kinesis_20121212.ListStreams"}},
		{name: "wrong service", op: "ListStreams", body: `{}`, headers: map[string]string{"X-Amz-Target": "DynamoDB_20120810.ListTables"}},
		{name: "no X-Amz-Target header", op: "ListStreams", body: `{}`, headers: map[string]string{"X-Amz-Target": ""}},
		{name: "no Authorization header", op: "ListStreams", body: `{}`, headers: map[string]string{"Authorization": ""}},
		{name: "Content-Type text/plain", op: "ListStreams", body: `{}`, headers: map[string]string{"Content-Type": "text/plain"}},

		// CreateStream validation.
		s("CreateStream without StreamName", "CreateStream", `{"ShardCount":1}`),
		s("CreateStream without ShardCount", "CreateStream", `{"StreamName":"ksp-diff-noshards"}`),
		s("CreateStream StreamName null", "CreateStream", `{"StreamName":null,"ShardCount":1}`),
		s("CreateStream ShardCount string", "CreateStream", `{"StreamName":"ksp-diff-x","ShardCount":"1"}`),
		s("CreateStream ShardCount bool", "CreateStream", `{"StreamName":"ksp-diff-x","ShardCount":true}`),
		s("CreateStream ShardCount object", "CreateStream", `{"StreamName":"ksp-diff-x","ShardCount":{}}`),
		s("CreateStream StreamName number", "CreateStream", `{"StreamName":5,"ShardCount":1}`),
		s("CreateStream StreamName list", "CreateStream", `{"StreamName":["a"],"ShardCount":1}`),
		s("CreateStream StreamName empty", "CreateStream", `{"StreamName":"","ShardCount":1}`),
		s("CreateStream StreamName bad characters", "CreateStream", `{"StreamName":"bad name!","ShardCount":1}`),
		s("CreateStream StreamName slash", "CreateStream", `{"StreamName":"a/b","ShardCount":1}`),
		s("CreateStream StreamName too long", "CreateStream", `{"StreamName":"`+long(129)+`","ShardCount":1}`),
		s("CreateStream ShardCount 0", "CreateStream", `{"StreamName":"ksp-diff-x","ShardCount":0}`),
		s("CreateStream ShardCount negative", "CreateStream", `{"StreamName":"ksp-diff-x","ShardCount":-1}`),
		s("CreateStream ShardCount 100001", "CreateStream", `{"StreamName":"ksp-diff-x","ShardCount":100001}`),
		s("CreateStream two invalid members", "CreateStream", `{"StreamName":"bad name!","ShardCount":0}`),
		{name: "CreateStream tags with invalid characters", op: "CreateStream", body: `{"StreamName":"ksp-diff-tags","ShardCount":1,"Tags":{"a!b":"v"}}`, waitActive: "ksp-diff-tags"},
		{name: "CreateStream ShardCount fractional", op: "CreateStream", body: `{"StreamName":"ksp-diff-frac","ShardCount":1.5}`, waitActive: "ksp-diff-frac"},

		// CreateStream and the stream-level reads.
		{name: "CreateStream", op: "CreateStream", body: withMain(`"ShardCount":2`), waitActive: diffStream},
		s("CreateStream existing", "CreateStream", withMain(`"ShardCount":1`)),
		{name: "CreateStream second stream", op: "CreateStream", body: `{` + gone + `,"ShardCount":1}`, waitActive: goneStream},
		{name: "CreateStream over the account shard quota", op: "CreateStream", body: `{"StreamName":"ksp-diff-big","ShardCount":11}`, waitActive: "ksp-diff-big"},

		s("DescribeStream", "DescribeStream", withMain("")),
		s("DescribeStream Limit 1", "DescribeStream", withMain(`"Limit":1`)),
		s("DescribeStream ExclusiveStartShardId", "DescribeStream", withMain(`"ExclusiveStartShardId":"shardId-000000000000"`)),
		s("DescribeStream without StreamName", "DescribeStream", `{}`),
		s("DescribeStream by StreamARN", "DescribeStream", `{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/`+diffStream+`"}`),
		s("DescribeStream unknown stream", "DescribeStream", `{"StreamName":"ksp-diff-missing"}`),
		s("DescribeStream StreamName bad characters", "DescribeStream", `{"StreamName":"a b"}`),
		s("DescribeStream Limit 0", "DescribeStream", withMain(`"Limit":0`)),
		s("DescribeStream Limit 10001", "DescribeStream", withMain(`"Limit":10001`)),
		s("DescribeStream Limit string", "DescribeStream", withMain(`"Limit":"1"`)),
		s("DescribeStream ExclusiveStartShardId bad", "DescribeStream", withMain(`"ExclusiveStartShardId":"bad id!"`)),

		s("DescribeStreamSummary", "DescribeStreamSummary", withMain("")),
		s("DescribeStreamSummary unknown stream", "DescribeStreamSummary", `{"StreamName":"ksp-diff-missing"}`),
		s("DescribeStreamSummary StreamName too long", "DescribeStreamSummary", `{"StreamName":"`+long(129)+`"}`),
		s("DescribeStreamSummary StreamName number", "DescribeStreamSummary", `{"StreamName":1}`),

		s("ListStreams", "ListStreams", `{}`),
		s("ListStreams Limit 1", "ListStreams", `{"Limit":1}`),
		s("ListStreams ExclusiveStartStreamName", "ListStreams", `{"ExclusiveStartStreamName":"`+diffStream+`"}`),
		s("ListStreams Limit 0", "ListStreams", `{"Limit":0}`),
		s("ListStreams Limit 10001", "ListStreams", `{"Limit":10001}`),
		s("ListStreams Limit string", "ListStreams", `{"Limit":"5"}`),
		s("ListStreams Limit 2^63", "ListStreams", `{"Limit":9223372036854775808}`),
		s("ListStreams Limit 2^62", "ListStreams", `{"Limit":4611686018427387904}`),
		s("ListStreams ExclusiveStartStreamName bad", "ListStreams", `{"ExclusiveStartStreamName":"a b"}`),

		s("ListShards", "ListShards", withMain("")),
		s("ListShards ExclusiveStartShardId", "ListShards", withMain(`"ExclusiveStartShardId":"shardId-000000000000"`)),
		s("ListShards MaxResults 1", "ListShards", withMain(`"MaxResults":1`)),
		s("ListShards without StreamName or NextToken", "ListShards", `{}`),
		s("ListShards StreamName and NextToken", "ListShards", withMain(`"NextToken":"abc"`)),
		s("ListShards unknown stream", "ListShards", `{"StreamName":"ksp-diff-missing"}`),
		s("ListShards MaxResults 0", "ListShards", withMain(`"MaxResults":0`)),
		s("ListShards MaxResults 10001", "ListShards", withMain(`"MaxResults":10001`)),
		s("ListShards ExclusiveStartShardId bad", "ListShards", withMain(`"ExclusiveStartShardId":"bad id!"`)),
		s("ListShards StreamCreationTimestamp string", "ListShards", withMain(`"StreamCreationTimestamp":"yesterday"`)),

		// PutRecord.
		{name: "PutRecord shard 0", op: "PutRecord", body: withMain(`"Data":"aGVsbG8=","PartitionKey":"p","ExplicitHashKey":"0"`), capture: map[string]string{"seq0": "SequenceNumber"}},
		s("PutRecord by partition key", "PutRecord", withMain(`"Data":"d29ybGQ=","PartitionKey":"some key"`)),
		{name: "PutRecord last hash key", op: "PutRecord", body: withMain(`"Data":"","PartitionKey":"p","ExplicitHashKey":"` + maxHashKey + `"`), capture: map[string]string{"seq1": "SequenceNumber"}},
		s("PutRecord ExplicitHashKey 2^128", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"p","ExplicitHashKey":"`+overHashKey+`"`)),
		s("PutRecord ExplicitHashKey 40 digits", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"p","ExplicitHashKey":"1`+strings.Repeat("0", 39)+`"`)),
		s("PutRecord ExplicitHashKey not a number", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"p","ExplicitHashKey":"abc"`)),
		s("PutRecord ExplicitHashKey negative", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"p","ExplicitHashKey":"-1"`)),
		s("PutRecord ExplicitHashKey leading zero", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"p","ExplicitHashKey":"01"`)),
		s("PutRecord ExplicitHashKey number", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"p","ExplicitHashKey":1`)),
		s("PutRecord without Data", "PutRecord", withMain(`"PartitionKey":"p"`)),
		s("PutRecord without PartitionKey", "PutRecord", withMain(`"Data":"eA=="`)),
		s("PutRecord PartitionKey empty", "PutRecord", withMain(`"Data":"eA==","PartitionKey":""`)),
		s("PutRecord PartitionKey 256 characters", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"`+long(256)+`"`)),
		s("PutRecord PartitionKey 257 characters", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"`+long(257)+`"`)),
		s("PutRecord Data not base64", "PutRecord", withMain(`"Data":"!!!!","PartitionKey":"p"`)),
		s("PutRecord Data unpadded base64", "PutRecord", withMain(`"Data":"aGVsbG8","PartitionKey":"p"`)),
		s("PutRecord Data number", "PutRecord", withMain(`"Data":12,"PartitionKey":"p"`)),
		s("PutRecord SequenceNumberForOrdering not a number", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"p","SequenceNumberForOrdering":"abc"`)),
		s("PutRecord unknown stream", "PutRecord", `{"StreamName":"ksp-diff-missing","Data":"eA==","PartitionKey":"p"}`),
		s("PutRecord Data over 1 MiB", "PutRecord", bigData(1<<20+1)),
		s("PutRecord Data plus key over 1 MiB", "PutRecord", bigData(1<<20)),
		s("PutRecords entry Data over 1 MiB", "PutRecords", jsonText(map[string]any{"StreamName": goneStream, "Records": []any{
			map[string]any{"PartitionKey": "k", "Data": []byte("x")}, map[string]any{"PartitionKey": "k", "Data": bytes.Repeat([]byte{'d'}, 1<<20+1)}}})),
		s("PutRecord PartitionKey 128 emoji", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"`+strings.Repeat("\U0001F600", 128)+`"`)),
		s("PutRecord PartitionKey 129 emoji", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"`+strings.Repeat("\U0001F600", 129)+`"`)),
		s("PutRecord PartitionKey invalid UTF-8", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"a\xffb"`)),
		s("PutRecord PartitionKey lone surrogate", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"a\\ud800b"`)),
		s("PutRecord PartitionKey surrogate pair", "PutRecord", withMain(`"Data":"eA==","PartitionKey":"a\\ud83d\\ude00b"`)),
		s("PutRecord Data with an escaped line break", "PutRecord", withMain(`"Data":"aGVs\\nbG8=","PartitionKey":"p"`)),

		// PutRecords.
		{name: "PutRecords", op: "PutRecords", body: withMain(`"Records":[{"Data":"b25l","PartitionKey":"a","ExplicitHashKey":"1"},{"Data":"dHdv","PartitionKey":"b"},{"Data":"dGhyZWU=","PartitionKey":"c","ExplicitHashKey":"2"}]`), capture: map[string]string{"seqLast": "Records.2.SequenceNumber"}},
		s("PutRecords 500 records", "PutRecords", records(500)),
		s("PutRecords 501 records", "PutRecords", records(501)),
		s("PutRecords no records", "PutRecords", withMain(`"Records":[]`)),
		s("PutRecords without Records", "PutRecords", withMain("")),
		s("PutRecords Records object", "PutRecords", withMain(`"Records":{}`)),
		s("PutRecords Records string", "PutRecords", withMain(`"Records":"x"`)),
		s("PutRecords entry without PartitionKey", "PutRecords", withMain(`"Records":[{"Data":"eA=="}]`)),
		s("PutRecords entry without Data", "PutRecords", withMain(`"Records":[{"PartitionKey":"p"}]`)),
		s("PutRecords entry PartitionKey too long", "PutRecords", withMain(`"Records":[{"Data":"eA==","PartitionKey":"`+long(257)+`"}]`)),
		s("PutRecords entry ExplicitHashKey 2^128", "PutRecords", withMain(`"Records":[{"Data":"eA==","PartitionKey":"p"},{"Data":"eA==","PartitionKey":"p","ExplicitHashKey":"`+overHashKey+`"}]`)),
		s("PutRecords entry ExplicitHashKey not a number", "PutRecords", withMain(`"Records":[{"Data":"eA==","PartitionKey":"p","ExplicitHashKey":"x1"}]`)),
		s("PutRecords entry Data not base64", "PutRecords", withMain(`"Records":[{"Data":"e===","PartitionKey":"p"}]`)),
		s("PutRecords entry string", "PutRecords", withMain(`"Records":["x"]`)),
		s("PutRecords unknown stream", "PutRecords", `{"StreamName":"ksp-diff-missing","Records":[{"Data":"eA==","PartitionKey":"p"}]}`),
		s("PutRecords without StreamName", "PutRecords", `{"Records":[{"Data":"eA==","PartitionKey":"p"}]}`),

		// GetShardIterator.
		{name: "GetShardIterator TRIM_HORIZON", op: "GetShardIterator", body: withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"`), capture: map[string]string{"itTrim": "ShardIterator"}},
		{name: "GetShardIterator LATEST", op: "GetShardIterator", body: withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"LATEST"`), capture: map[string]string{"itLatest": "ShardIterator"}},
		{name: "GetShardIterator AT_SEQUENCE_NUMBER", op: "GetShardIterator", body: withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"{{seq0}}"`), capture: map[string]string{"itAt": "ShardIterator"}},
		{name: "GetShardIterator AFTER_SEQUENCE_NUMBER", op: "GetShardIterator", body: withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AFTER_SEQUENCE_NUMBER","StartingSequenceNumber":"{{seq0}}"`), capture: map[string]string{"itAfter": "ShardIterator"}},
		s("GetShardIterator AFTER_SEQUENCE_NUMBER of the last record", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AFTER_SEQUENCE_NUMBER","StartingSequenceNumber":"{{seqLast}}"`)),
		s("GetShardIterator AT_TIMESTAMP", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1`)),
		s("GetShardIterator AT_TIMESTAMP in the future", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":99999999999`)),
		s("GetShardIterator AT_TIMESTAMP without Timestamp", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP"`)),
		s("GetShardIterator AT_TIMESTAMP with sequence number", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1,"StartingSequenceNumber":"{{seq0}}"`)),
		s("GetShardIterator Timestamp 1e300", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1e300`)),
		s("GetShardIterator Timestamp string", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":"now"`)),
		s("GetShardIterator bad type", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"BOGUS"`)),
		s("GetShardIterator lowercase type", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"latest"`)),
		s("GetShardIterator without type", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000"`)),
		s("GetShardIterator without ShardId", "GetShardIterator", withMain(`"ShardIteratorType":"LATEST"`)),
		s("GetShardIterator ShardId bad characters", "GetShardIterator", withMain(`"ShardId":"bad id!","ShardIteratorType":"LATEST"`)),
		s("GetShardIterator ShardId too long", "GetShardIterator", withMain(`"ShardId":"`+long(129)+`","ShardIteratorType":"LATEST"`)),
		s("GetShardIterator AT_SEQUENCE_NUMBER without sequence number", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_SEQUENCE_NUMBER"`)),
		s("GetShardIterator AFTER_SEQUENCE_NUMBER without sequence number", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AFTER_SEQUENCE_NUMBER"`)),
		s("GetShardIterator TRIM_HORIZON with sequence number", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON","StartingSequenceNumber":"{{seq0}}"`)),
		s("GetShardIterator LATEST with sequence number", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"LATEST","StartingSequenceNumber":"{{seq0}}"`)),
		s("GetShardIterator sequence number not a number", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"abc"`)),
		s("GetShardIterator sequence number leading zero", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"0123"`)),
		s("GetShardIterator sequence number never issued", "GetShardIterator", withMain(`"ShardId":"shardId-000000000000","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"`+strings.Repeat("9", 57)+`"`)),
		s("GetShardIterator sequence number of another shard", "GetShardIterator", withMain(`"ShardId":"shardId-000000000001","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"{{seq0}}"`)),
		s("GetShardIterator unknown shard", "GetShardIterator", withMain(`"ShardId":"shardId-000000000009","ShardIteratorType":"LATEST"`)),
		s("GetShardIterator malformed shard id", "GetShardIterator", withMain(`"ShardId":"shardId-abc","ShardIteratorType":"LATEST"`)),
		s("GetShardIterator short shard id", "GetShardIterator", withMain(`"ShardId":"shardId-1","ShardIteratorType":"LATEST"`)),
		s("GetShardIterator bare shard number", "GetShardIterator", withMain(`"ShardId":"1","ShardIteratorType":"LATEST"`)),
		s("GetShardIterator unknown stream", "GetShardIterator", `{"StreamName":"ksp-diff-missing","ShardId":"shardId-000000000000","ShardIteratorType":"LATEST"}`),
		s("GetShardIterator without StreamName", "GetShardIterator", `{"ShardId":"shardId-000000000000","ShardIteratorType":"LATEST"}`),

		// GetRecords.
		{name: "GetRecords TRIM_HORIZON", op: "GetRecords", body: `{"ShardIterator":"{{itTrim}}"}`, capture: map[string]string{"itNext": "NextShardIterator"}},
		s("GetRecords TRIM_HORIZON Limit 1", "GetRecords", `{"ShardIterator":"{{itTrim}}","Limit":1}`),
		s("GetRecords at the end", "GetRecords", `{"ShardIterator":"{{itNext}}"}`),
		s("GetRecords LATEST", "GetRecords", `{"ShardIterator":"{{itLatest}}"}`),
		s("GetRecords AT_SEQUENCE_NUMBER", "GetRecords", `{"ShardIterator":"{{itAt}}"}`),
		s("GetRecords AFTER_SEQUENCE_NUMBER", "GetRecords", `{"ShardIterator":"{{itAfter}}","Limit":10000}`),
		s("GetRecords Limit 0", "GetRecords", `{"ShardIterator":"{{itTrim}}","Limit":0}`),
		s("GetRecords Limit 10001", "GetRecords", `{"ShardIterator":"{{itTrim}}","Limit":10001}`),
		s("GetRecords Limit string", "GetRecords", `{"ShardIterator":"{{itTrim}}","Limit":"1"}`),
		s("GetRecords without ShardIterator", "GetRecords", `{}`),
		s("GetRecords ShardIterator empty", "GetRecords", `{"ShardIterator":""}`),
		s("GetRecords ShardIterator number", "GetRecords", `{"ShardIterator":1}`),
		s("GetRecords ShardIterator 513 characters", "GetRecords", `{"ShardIterator":"`+strings.Repeat("A", 513)+`"}`),
		s("GetRecords ShardIterator garbage", "GetRecords", `{"ShardIterator":"notaniterator"}`),
		s("GetRecords ShardIterator base64 garbage", "GetRecords", `{"ShardIterator":"`+strings.Repeat("QUJD", 60)+`"}`),
		s("GetRecords ShardIterator tampered", "GetRecords", `{"ShardIterator":"{{itTrim:tamper}}"}`),
		s("GetRecords ShardIterator truncated", "GetRecords", `{"ShardIterator":"{{itTrim:trunc}}"}`),

		// Retention.
		s("IncreaseStreamRetentionPeriod 48 hours", "IncreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":48`)),
		s("IncreaseStreamRetentionPeriod shorter than current", "IncreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":24`)),
		s("IncreaseStreamRetentionPeriod 10 hours", "IncreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":10`)),
		s("IncreaseStreamRetentionPeriod 0 hours", "IncreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":0`)),
		s("IncreaseStreamRetentionPeriod 9000 hours", "IncreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":9000`)),
		s("IncreaseStreamRetentionPeriod without hours", "IncreaseStreamRetentionPeriod", withMain("")),
		s("IncreaseStreamRetentionPeriod hours string", "IncreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":"48"`)),
		s("IncreaseStreamRetentionPeriod unknown stream", "IncreaseStreamRetentionPeriod", `{"StreamName":"ksp-diff-missing","RetentionPeriodHours":48}`),
		s("DecreaseStreamRetentionPeriod longer than current", "DecreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":72`)),
		s("DecreaseStreamRetentionPeriod 24 hours", "DecreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":24`)),
		s("DecreaseStreamRetentionPeriod 10 hours", "DecreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":10`)),
		s("DecreaseStreamRetentionPeriod 0 hours", "DecreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":0`)),
		s("DecreaseStreamRetentionPeriod unknown stream", "DecreaseStreamRetentionPeriod", `{"StreamName":"ksp-diff-missing","RetentionPeriodHours":24}`),
		s("IncreaseStreamRetentionPeriod 200 hours", "IncreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":200`)),
		s("DecreaseStreamRetentionPeriod back to 24 hours", "DecreaseStreamRetentionPeriod", withMain(`"RetentionPeriodHours":24`)),

		// Tags.
		s("AddTagsToStream", "AddTagsToStream", withMain(`"Tags":{"a":"1","b":"2","empty":""}`)),
		s("ListTagsForStream", "ListTagsForStream", withMain("")),
		s("ListTagsForStream Limit 1", "ListTagsForStream", withMain(`"Limit":1`)),
		s("ListTagsForStream ExclusiveStartTagKey", "ListTagsForStream", withMain(`"ExclusiveStartTagKey":"a"`)),
		s("ListTagsForStream Limit 0", "ListTagsForStream", withMain(`"Limit":0`)),
		s("ListTagsForStream Limit 11", "ListTagsForStream", withMain(`"Limit":11`)),
		s("ListTagsForStream Limit 51", "ListTagsForStream", withMain(`"Limit":51`)),
		s("ListTagsForStream ExclusiveStartTagKey empty", "ListTagsForStream", withMain(`"ExclusiveStartTagKey":""`)),
		s("ListTagsForStream unknown stream", "ListTagsForStream", `{"StreamName":"ksp-diff-missing"}`),
		s("AddTagsToStream no tags", "AddTagsToStream", withMain(`"Tags":{}`)),
		s("AddTagsToStream 11 tags", "AddTagsToStream", tags(diffStream, "t", 11)),
		s("AddTagsToStream key too long", "AddTagsToStream", withMain(`"Tags":{"`+long(129)+`":"v"}`)),
		s("AddTagsToStream key empty", "AddTagsToStream", withMain(`"Tags":{"":"v"}`)),
		s("AddTagsToStream value too long", "AddTagsToStream", withMain(`"Tags":{"k":"`+long(257)+`"}`)),
		s("AddTagsToStream value number", "AddTagsToStream", withMain(`"Tags":{"k":1}`)),
		s("AddTagsToStream Tags list", "AddTagsToStream", withMain(`"Tags":["k"]`)),
		s("AddTagsToStream without Tags", "AddTagsToStream", withMain("")),
		s("AddTagsToStream unknown stream", "AddTagsToStream", `{"StreamName":"ksp-diff-missing","Tags":{"k":"v"}}`),
		s("AddTagsToStream invalid characters", "AddTagsToStream", withMain(`"Tags":{"a!b":"v"}`)),
		s("AddTagsToStream percent sign", "AddTagsToStream", withMain(`"Tags":{"pct":"50%"}`)),
		s("RemoveTagsFromStream", "RemoveTagsFromStream", withMain(`"TagKeys":["a","not-there"]`)),
		s("RemoveTagsFromStream no keys", "RemoveTagsFromStream", withMain(`"TagKeys":[]`)),
		s("RemoveTagsFromStream 11 keys", "RemoveTagsFromStream", withMain(`"TagKeys":["k0","k1","k2","k3","k4","k5","k6","k7","k8","k9","k10"]`)),
		s("RemoveTagsFromStream key empty", "RemoveTagsFromStream", withMain(`"TagKeys":[""]`)),
		s("RemoveTagsFromStream without TagKeys", "RemoveTagsFromStream", withMain("")),
		s("RemoveTagsFromStream TagKeys string", "RemoveTagsFromStream", withMain(`"TagKeys":"a"`)),
		s("RemoveTagsFromStream unknown stream", "RemoveTagsFromStream", `{"StreamName":"ksp-diff-missing","TagKeys":["a"]}`),
		s("ListTagsForStream after changes", "ListTagsForStream", withMain("")),
		s("AddTagsToStream 10 tags 1", "AddTagsToStream", tags(goneStream, "a", 10)),
		s("AddTagsToStream 10 tags 2", "AddTagsToStream", tags(goneStream, "b", 10)),
		s("AddTagsToStream 10 tags 3", "AddTagsToStream", tags(goneStream, "c", 10)),
		s("AddTagsToStream 10 tags 4", "AddTagsToStream", tags(goneStream, "d", 10)),
		s("AddTagsToStream 10 tags 5", "AddTagsToStream", tags(goneStream, "e", 10)),
		s("AddTagsToStream past 50 tags", "AddTagsToStream", tags(goneStream, "f", 1)),
		s("AddTagsToStream replacing at 50 tags", "AddTagsToStream", tags(goneStream, "a", 3)),

		// SplitShard and MergeShards: validation only (successes change the
		// shards the other steps use).
		s("SplitShard without NewStartingHashKey", "SplitShard", withMain(`"ShardToSplit":"shardId-000000000000"`)),
		s("SplitShard NewStartingHashKey not a number", "SplitShard", withMain(`"ShardToSplit":"shardId-000000000000","NewStartingHashKey":"abc"`)),
		s("SplitShard without ShardToSplit", "SplitShard", withMain(`"NewStartingHashKey":"1"`)),
		s("SplitShard unknown stream", "SplitShard", `{"StreamName":"ksp-diff-missing","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1"}`),
		s("SplitShard unknown shard", "SplitShard", withMain(`"ShardToSplit":"shardId-000000000009","NewStartingHashKey":"1"`)),
		s("MergeShards without AdjacentShardToMerge", "MergeShards", withMain(`"ShardToMerge":"shardId-000000000000"`)),
		s("MergeShards ShardToMerge bad characters", "MergeShards", withMain(`"ShardToMerge":"bad id!","AdjacentShardToMerge":"shardId-000000000001"`)),
		s("MergeShards unknown stream", "MergeShards", `{"StreamName":"ksp-diff-missing","ShardToMerge":"shardId-000000000000","AdjacentShardToMerge":"shardId-000000000001"}`),

		// DeleteStream, and what is left of a deleted stream.
		{name: "GetShardIterator before delete", op: "GetShardIterator", body: `{` + gone + `,"ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`, capture: map[string]string{"itGone": "ShardIterator"}},
		s("DeleteStream without StreamName", "DeleteStream", `{}`),
		s("DeleteStream StreamName bad characters", "DeleteStream", `{"StreamName":"a b"}`),
		s("DeleteStream StreamName number", "DeleteStream", `{"StreamName":7}`),
		{name: "DeleteStream", op: "DeleteStream", body: `{` + gone + `}`, waitGone: goneStream},
		s("DeleteStream deleted stream", "DeleteStream", `{`+gone+`}`),
		s("DescribeStream deleted stream", "DescribeStream", `{`+gone+`}`),
		s("PutRecord deleted stream", "PutRecord", `{`+gone+`,"Data":"eA==","PartitionKey":"p"}`),
		s("GetRecords deleted stream", "GetRecords", `{"ShardIterator":"{{itGone}}"}`),
		s("ListStreams at the end", "ListStreams", `{}`),
	}
	return steps
}

// diffTarget is one server under comparison and the values captured from its answers.
type diffTarget struct {
	name string
	url  string
	vars map[string]string
}

const (
	dummyAuth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000"
	dummyDate = "20260101T000000Z"
)

var placeholder = regexp.MustCompile(`\{\{(\w+)(?::(\w+))?\}\}`)

// fill replaces placeholders with this target's captured values.
func (tg *diffTarget) fill(body string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(body, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		v, ok := tg.vars[sub[1]]
		if !ok {
			missing = append(missing, sub[1])
			return m
		}
		switch sub[2] {
		case "tamper":
			// Change one character early in the iterator: in kinesalite's the
			// first cipher block (so it no longer decrypts to a timestamp), in
			// ksp's the authenticated header.
			b := []byte(v)
			if len(b) > 12 {
				if b[12] == 'A' {
					b[12] = 'B'
				} else {
					b[12] = 'A'
				}
			}
			return string(b)
		case "trunc":
			return v[:max(0, len(v)-4)]
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value captured for %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func (tg *diffTarget) post(client *http.Client, op, body string, headers map[string]string) (outcome, error) {
	req, err := http.NewRequest(http.MethodPost, tg.url+"/", strings.NewReader(body))
	if err != nil {
		return outcome{}, err
	}
	h := req.Header
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amz-Target", "Kinesis_20131202."+op)
	h.Set("X-Amz-Date", dummyDate)
	h.Set("Authorization", dummyAuth)
	for k, v := range headers {
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return outcome{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{}, err
	}
	return newOutcome(resp.StatusCode, b)
}

func (tg *diffTarget) send(client *http.Client, st diffStep) (outcome, error) {
	body, err := tg.fill(st.body)
	if err != nil {
		return outcome{}, err
	}
	return tg.post(client, st.op, body, st.headers)
}

// waitStatus polls DescribeStreamSummary until the stream is ACTIVE (active)
// or gone (!active). Bounded: at most 200 polls.
func (tg *diffTarget) waitStatus(t *testing.T, client *http.Client, stream string, active bool) {
	t.Helper()
	body := jsonText(map[string]string{"StreamName": stream})
	var last outcome
	for range 200 {
		out, err := tg.post(client, "DescribeStreamSummary", body, nil)
		if err != nil {
			t.Errorf("%s: waiting for stream %s: %v", tg.name, stream, err)
			return
		}
		last = out
		if !active && out.errType == "ResourceNotFoundException" {
			return
		}
		if active && out.status == http.StatusOK {
			status, _ := jsonPath(out.body, "StreamDescriptionSummary.StreamStatus")
			if status == "ACTIVE" {
				return
			}
		}
		if active && out.status != http.StatusOK {
			return // the create failed; the step's comparison reports it
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s: stream %s not %s after 200 polls; last answer %s %s", tg.name, stream,
		map[bool]string{true: "ACTIVE", false: "gone"}[active], last, clip(string(last.body)))
}

// outcome is what one server answered.
type outcome struct {
	status  int
	errType string   // __type of an error ("" on success)
	shape   []string // sorted key paths of a success
	body    []byte
}

func (o outcome) String() string {
	if o.status == http.StatusOK {
		return "200"
	}
	return fmt.Sprintf("%d %s", o.status, o.errType)
}

var xmlRoot = regexp.MustCompile(`^\s*<(\w+)`)

func newOutcome(status int, body []byte) (outcome, error) {
	o := outcome{status: status, body: body}
	if status != http.StatusOK {
		var e struct {
			Type string `json:"__type"`
		}
		if json.Unmarshal(body, &e) == nil {
			// Some services prefix the type with its namespace ("...#Name").
			o.errType = e.Type[strings.LastIndex(e.Type, "#")+1:]
		} else if m := xmlRoot.FindSubmatch(body); m != nil {
			o.errType = string(m[1]) // kinesalite's non-JSON errors are <Type/> documents
		} else {
			o.errType = "unparsable:" + clip(string(body))
		}
		return o, nil
	}
	// kinesalite answers actions with no output with an empty body, ksp with
	// {}; the SDKs read both as an empty result.
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return o, fmt.Errorf("200 with a body that is not JSON: %v: %s", err, clip(string(body)))
	}
	paths := map[string]bool{}
	shapeOf("", v, paths)
	for p := range paths {
		o.shape = append(o.shape, p)
	}
	sort.Strings(o.shape)
	return o, nil
}

// shapeOf records "path=kind" for v and everything under it. List elements
// share the path "list[]", so lists compare by the shapes of their elements.
func shapeOf(path string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		out[path+"=object"] = true
		for k, c := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			shapeOf(p, c, out)
		}
	case []any:
		out[path+"=list"] = true
		for _, c := range x {
			shapeOf(path+"[]", c, out)
		}
	case string:
		out[path+"=string"] = true
	case float64:
		out[path+"=number"] = true
	case bool:
		out[path+"=bool"] = true
	case nil:
		out[path+"=null"] = true
	}
}

// missingFrom returns the entries of have that other lacks (both sorted).
func missingFrom(have, other []string) []string {
	var out []string
	for _, p := range have {
		i := sort.SearchStrings(other, p)
		if i == len(other) || other[i] != p {
			out = append(out, p)
		}
	}
	return out
}

// jsonPath reads a string at a dotted path ("Records.2.SequenceNumber").
func jsonPath(body []byte, path string) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", err
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			var i int
			if _, err := fmt.Sscan(part, &i); err != nil || i < 0 || i >= len(x) {
				return "", fmt.Errorf("no element %s", part)
			}
			v = x[i]
		default:
			return "", fmt.Errorf("no %s", part)
		}
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is %T, not a string", path, v)
	}
	return s, nil
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}
