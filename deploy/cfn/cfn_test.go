package cfn

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ksp-project/ksp/kds"
)

const shortForms = `
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Env:
    Type: String
    AllowedValues: [dev, prod]
    Default: dev
  Shards:
    Type: Number
    Default: 3
Mappings:
  Retention:
    dev: {Hours: 24}
    prod: {Hours: 168}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition IsProd, !Condition NotProd]
Resources:
  Key:
    Type: AWS::KMS::Key
    Condition: IsProd
  Orders:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: !Sub "${AWS::StackName}-orders-${Env}"
      ShardCount: !Ref Shards
      RetentionPeriodHours: !FindInMap [Retention, !Ref Env, Hours]
      StreamEncryption: !If
        - IsProd
        - {EncryptionType: KMS, KeyId: !GetAtt Key.Arn}
        - !Ref AWS::NoValue
      Tags:
        - {Key: env, Value: !Ref Env}
        - Key: joined
          Value: !Join ["-", [a, !Select [1, !Split [",", "x,y,z"]]]]
  Events:
    Type: AWS::Kinesis::Stream
    Properties:
      StreamModeDetails: {StreamMode: ON_DEMAND}
  Fanout:
    Type: AWS::Kinesis::StreamConsumer
    Properties:
      ConsumerName: !Sub
        - "${App}-efo"
        - {App: !Ref Env}
      StreamARN: !GetAtt Orders.Arn
  Topic:
    Type: AWS::SNS::Topic
`

func resolve(t *testing.T, src string, env Env) (*Plan, error) {
	t.Helper()
	tpl, err := Parse([]byte(src))
	if err != nil {
		return nil, err
	}
	return tpl.Resolve(env)
}

func TestResolveShortFormsDefaults(t *testing.T) {
	plan, err := resolve(t, shortForms, Env{StackName: "app"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Stream{
		{LogicalID: "Orders", Name: "app-orders-dev", ARN: kds.StreamARN("us-east-1", "000000000000", "app-orders-dev"),
			Mode: kds.StreamModeProvisioned, ShardCount: 3, RetentionHours: 24, Encryption: kds.EncryptionNone,
			Tags: map[string]string{"env": "dev", "joined": "a-y"}},
		{LogicalID: "Events", Name: "app-Events", ARN: kds.StreamARN("us-east-1", "000000000000", "app-Events"),
			Mode: kds.StreamModeOnDemand, RetentionHours: 24, Encryption: kds.EncryptionNone},
	}
	if !reflect.DeepEqual(plan.Streams, want) {
		t.Fatalf("streams = %+v\nwant %+v", plan.Streams, want)
	}
	if len(plan.Consumers) != 1 || plan.Consumers[0].Name != "dev-efo" || plan.Consumers[0].StreamName != "app-orders-dev" {
		t.Fatalf("consumers = %+v", plan.Consumers)
	}
	if len(plan.Skipped) != 2 || plan.Skipped[0].LogicalID != "Key" || !strings.Contains(plan.Skipped[0].Reason, "IsProd") || plan.Skipped[1].LogicalID != "Topic" {
		t.Fatalf("skipped = %+v", plan.Skipped)
	}
}

func TestResolveParametersAndConditions(t *testing.T) {
	plan, err := resolve(t, shortForms, Env{StackName: "app", Region: "eu-west-1", Account: "123456789012", Parameters: map[string]string{"Env": "prod", "Shards": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	s := plan.Streams[0]
	if s.Name != "app-orders-prod" || s.ShardCount != 2 || s.RetentionHours != 168 || s.Encryption != kds.EncryptionKMS || s.KeyID != "Key.Arn" {
		t.Fatalf("stream = %+v", s)
	}
	if len(plan.Skipped) != 2 || plan.Skipped[0].LogicalID != "Key" || strings.Contains(plan.Skipped[0].Reason, "condition") {
		t.Fatalf("the KMS key's condition holds, yet skipped = %+v", plan.Skipped)
	}
}

func TestJSONTemplate(t *testing.T) {
	src := `{"Resources": {"S": {"Type": "AWS::Kinesis::Stream", "Properties": {"Name": {"Fn::Join": ["", ["a", {"Ref": "AWS::Region"}]]}, "ShardCount": 2, "RetentionPeriodHours": 48}}}}`
	plan, err := resolve(t, src, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if s := plan.Streams[0]; s.Name != "aus-east-1" || s.ShardCount != 2 || s.RetentionHours != 48 {
		t.Fatalf("stream = %+v", s)
	}
}

// TestBadTemplates: each bad input is one ValidationError naming where.
func TestBadTemplates(t *testing.T) {
	stream := func(props string) string {
		return "Resources:\n  S:\n    Type: AWS::Kinesis::Stream\n    Properties:\n" + props
	}
	for _, tc := range []struct {
		name, src string
		params    map[string]string
		want      string
	}{
		{"not yaml", "Resources: [", nil, "not valid YAML or JSON"},
		{"not json", `{"Resources": `, nil, "not valid YAML or JSON"},
		{"not a mapping", "- a", nil, "not a mapping"},
		{"no resources", "Parameters: {}", nil, "no resources"},
		{"unknown short intrinsic", stream("      Name: !Frobnicate x\n"), nil, "unknown intrinsic function !Frobnicate"},
		{"unknown long intrinsic", stream("      Name: {Fn::Frobnicate: x}\n"), nil, "unknown intrinsic function Fn::Frobnicate"},
		{"intrinsic with siblings", stream("      Name: {Ref: X, Other: 1}\n"), nil, "must be the only key"},
		{"missing parameter", "Parameters:\n  P: {Type: String}\n" + stream("      Name: !Ref P\n"), nil, "parameter P: no value given"},
		{"unknown parameter", stream("      ShardCount: 1\n"), map[string]string{"Nope": "1"}, "parameter Nope: the template declares no such parameter"},
		{"number parameter", "Parameters:\n  P: {Type: Number}\n" + stream("      ShardCount: !Ref P\n"), map[string]string{"P": "many"}, `parameter P: value "many" is not a Number`},
		{"allowed values", "Parameters:\n  P: {Type: String, AllowedValues: [a]}\n" + stream("      ShardCount: 1\n"), map[string]string{"P": "b"}, "not one of AllowedValues"},
		{"shard count zero", stream("      ShardCount: 0\n"), nil, "resource S (AWS::Kinesis::Stream) property ShardCount: 0 is out of range 1..100000"},
		{"shard count text", stream("      ShardCount: two\n"), nil, `property ShardCount: "two" is not an integer`},
		{"retention low", stream("      RetentionPeriodHours: 23\n"), nil, "property RetentionPeriodHours: 23 is out of range 24..8760"},
		{"retention high", stream("      RetentionPeriodHours: 9000\n"), nil, "property RetentionPeriodHours: 9000 is out of range 24..8760"},
		{"on-demand with shards", stream("      ShardCount: 2\n      StreamModeDetails: {StreamMode: ON_DEMAND}\n"), nil, "ON_DEMAND stream takes no ShardCount"},
		{"bad mode", stream("      StreamModeDetails: {StreamMode: FAST}\n"), nil, "property StreamModeDetails: StreamMode \"FAST\""},
		{"bad name", stream("      Name: 'a b'\n"), nil, "property Name: \"a b\""},
		{"misspelt property", stream("      ShardCont: 2\n"), nil, "property ShardCont: unknown property"},
		{"encryption without key", stream("      StreamEncryption: {EncryptionType: KMS}\n"), nil, "property StreamEncryption: KeyId"},
		{"undeclared condition", "Resources:\n  S:\n    Type: AWS::Kinesis::Stream\n    Condition: Nope\n", nil, `condition "Nope" is not declared`},
		{"self condition", "Conditions:\n  C: !Condition C\n" + stream("      ShardCount: 1\n"), nil, "condition C: refers to itself"},
		{"ref nowhere", stream("      Name: !Ref Nowhere\n"), nil, "Ref Nowhere: no such parameter or resource"},
		{"aws-only function", stream("      Name: !ImportValue X\n"), nil, "Fn::ImportValue has a value only AWS knows"},
		{"consumer without name", "Resources:\n  C:\n    Type: AWS::Kinesis::StreamConsumer\n    Properties: {StreamARN: arn:aws:kinesis:us-east-1:000000000000:stream/s}\n", nil, "property ConsumerName: required"},
		{"consumer bad arn", "Resources:\n  C:\n    Type: AWS::Kinesis::StreamConsumer\n    Properties: {ConsumerName: c, StreamARN: nope}\n", nil, "property StreamARN:"},
		{"consumer other region", "Resources:\n  C:\n    Type: AWS::Kinesis::StreamConsumer\n    Properties: {ConsumerName: c, StreamARN: arn:aws:kinesis:eu-west-1:000000000000:stream/s}\n", nil, "not in the endpoint's region"},
		{"duplicate stream", "Resources:\n  A: {Type: AWS::Kinesis::Stream, Properties: {Name: s, ShardCount: 1}}\n  B: {Type: AWS::Kinesis::Stream, Properties: {Name: s, ShardCount: 1}}\n", nil, "also declared by A"},
		{"duplicate key", "Resources:\n  A: {Type: AWS::SNS::Topic}\n  A: {Type: AWS::SNS::Topic}\n", nil, "duplicate key"},
		{"alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", nil, "too deeply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(t, tc.src, Env{Parameters: tc.params})
			var e *Error
			if !errors.As(err, &e) || e.Code != ErrCodeValidation {
				t.Fatalf("error = %v, want a ValidationError", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %q, want one line containing %q", err, tc.want)
			}
		})
	}
}

// TestGeneratedTemplate reads a template ksp template wrote (the fuzz
// target's seed too): one encrypted stream, two consumers, the rest skipped.
func TestGeneratedTemplate(t *testing.T) {
	b, err := os.ReadFile("testdata/everything.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := resolve(t, string(b), Env{StackName: "all"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Streams) != 1 || plan.Streams[0].Name != "all-events" || plan.Streams[0].ShardCount != 3 || plan.Streams[0].RetentionHours != 168 ||
		plan.Streams[0].Encryption != kds.EncryptionKMS || plan.Streams[0].KeyID != "StreamKey.Arn" {
		t.Fatalf("streams = %+v", plan.Streams)
	}
	if len(plan.Consumers) != 2 || plan.Consumers[0].Name != "efo-one" || plan.Consumers[1].StreamARN != plan.Streams[0].ARN {
		t.Fatalf("consumers = %+v", plan.Consumers)
	}
	if len(plan.Skipped) < 20 {
		t.Fatalf("skipped = %d resources", len(plan.Skipped))
	}
}
