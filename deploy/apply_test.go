package deploy

import (
	"context"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/deploy/cfn"
	"github.com/ksp-project/ksp/kds"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// plans resolves the five generated templates for srv.
func plans(t *testing.T, srv *server.Server) []*cfn.Plan {
	t.Helper()
	var out []*cfn.Plan
	for name, file := range generated(t, t.TempDir()) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := cfn.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p, err := tpl.Resolve(cfn.Env{Region: srv.Region(), Account: srv.Account(), StackName: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, p)
	}
	return out
}

// state is what the server holds, as the SDK reports it.
func state(t *testing.T, client *kinesis.Client) []string {
	t.Helper()
	ctx := context.Background()
	ls, err := client.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range ls.StreamNames {
		d, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		s := d.StreamDescriptionSummary
		out = append(out, strings.Join([]string{"stream", name, string(s.StreamModeDetails.StreamMode),
			itoa(aws.ToInt32(s.OpenShardCount)), itoa(aws.ToInt32(s.RetentionPeriodHours)), string(s.EncryptionType), aws.ToString(s.KeyId)}, " "))
		cs, err := client.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: s.StreamARN})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs.Consumers {
			out = append(out, "consumer "+name+" "+aws.ToString(c.ConsumerName)+" "+string(c.ConsumerStatus)+" "+aws.ToString(c.ConsumerARN))
		}
	}
	sort.Strings(out)
	return out
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestApplyCreatesDeclaredTwiceWithoutChange: the five templates create
// exactly the streams and consumers they declare, with their settings; a
// second Apply changes nothing.
func TestApplyCreatesDeclaredTwiceWithoutChange(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	client := servertest.Client(t, srv)
	plan, err := MergePlans(plans(t, srv)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changes, err := Apply(ctx, client, plan, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range plan.Streams {
		shards := s.ShardCount
		if s.Mode == kds.StreamModeOnDemand {
			shards = kds.OnDemandDefaultShards
		}
		want = append(want, strings.Join([]string{"stream", s.Name, string(s.Mode), strconv.Itoa(shards), strconv.Itoa(s.RetentionHours), string(s.Encryption), s.KeyID}, " "))
	}
	for _, ch := range changes {
		if ch.Action != "created" {
			t.Errorf("first apply: %v, want created", ch)
		}
	}
	got := state(t, client)
	var gotStreams []string
	consumers := map[string]bool{}
	for _, line := range got {
		if strings.HasPrefix(line, "stream ") {
			gotStreams = append(gotStreams, line)
		} else {
			f := strings.Fields(line)
			consumers[f[1]+"/"+f[2]] = f[3] == "ACTIVE"
		}
	}
	sort.Strings(want)
	if !slices.Equal(gotStreams, want) {
		t.Fatalf("streams on the server:\n%s\nwant:\n%s", strings.Join(gotStreams, "\n"), strings.Join(want, "\n"))
	}
	if len(consumers) != len(plan.Consumers) {
		t.Fatalf("consumers on the server %v, want %d", consumers, len(plan.Consumers))
	}
	for _, c := range plan.Consumers {
		if !consumers[c.StreamName+"/"+c.Name] {
			t.Errorf("consumer %s/%s is missing or not ACTIVE: %v", c.StreamName, c.Name, consumers)
		}
	}

	again, err := Apply(ctx, client, plan, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range again {
		if ch.Action != "unchanged" {
			t.Errorf("second apply: %v, want unchanged", ch)
		}
	}
	if after := state(t, client); !slices.Equal(after, got) {
		t.Fatalf("second apply changed the server:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(got, "\n"))
	}
}

// TestApplyConvergesAnExistingStream: a stream that differs from the
// template is brought to it.
func TestApplyConvergesAnExistingStream(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	client := servertest.Client(t, srv)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	plan := &cfn.Plan{Streams: []cfn.Stream{{LogicalID: "S", Name: "s", Mode: kds.StreamModeProvisioned, ShardCount: 2,
		RetentionHours: 72, Encryption: kds.EncryptionKMS, KeyID: "alias/aws/kinesis", Tags: map[string]string{"team": "a"}}}}
	changes, err := Apply(ctx, client, plan, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !strings.HasPrefix(changes[0].Action, "updated: [shards 1→2 retention 24h→72h encryption KMS alias/aws/kinesis 1 tags]") {
		t.Fatalf("changes = %v", changes)
	}
	if got := state(t, client); !slices.Equal(got, []string{"stream s PROVISIONED 2 72 KMS alias/aws/kinesis"}) {
		t.Fatalf("state = %v", got)
	}
}

// TestApplyChecksBeforeCreating: a consumer of a stream nobody declares
// stops Apply before any stream is created.
func TestApplyChecksBeforeCreating(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	client := servertest.Client(t, srv)
	plan := &cfn.Plan{
		Streams:   []cfn.Stream{{LogicalID: "S", Name: "s", Mode: kds.StreamModeProvisioned, ShardCount: 1, RetentionHours: 24}},
		Consumers: []cfn.Consumer{{LogicalID: "C", Name: "c", StreamName: "elsewhere"}},
	}
	if _, err := Apply(context.Background(), client, plan, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), `stream "elsewhere" is neither in the templates nor on the endpoint`) {
		t.Fatalf("Apply error = %v", err)
	}
	if got := state(t, client); len(got) != 0 {
		t.Fatalf("Apply created %v before failing", got)
	}
}
