package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/ksp-project/ksp/deploy/cfn"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/dynamo"
)

func intp(v int) *int { return &v }

// configs are the five configurations the issue names.
var configs = []struct {
	name string
	c    Config
}{
	{"provisioned-kcl", Config{App: "orders", Shards: 4, RetentionHours: 48, KCL: true}},
	{"ondemand-fanout", Config{App: "clicks", OnDemand: true, RetentionHours: 168, KCL: true, FanoutConsumers: []string{"analytics", "audit-v2"}}},
	{"lambda-onfailure", Config{App: "events", Encryption: EncryptionNone, Lambda: &Lambda{
		FunctionName: "events-handler", RoleName: "events-handler-role", BatchSize: 500, WindowSeconds: 5,
		Bisect: true, ReportBatchItemFailures: true, MaxRetries: intp(5), MaxRecordAgeSeconds: intp(3600),
		Parallelization: 2, OnFailureQueue: true}}},
	{"customer-kms", Config{App: "payments", Shards: 2, Encryption: EncryptionCustomerManaged, KCL: true}},
	{"everything", Config{App: "all", StreamName: "all-events", Shards: 3, RetentionHours: 24 * 7, Encryption: EncryptionCustomerManaged,
		KCL: true, LeaseTable: "all-app", FanoutConsumers: []string{"efo-one", "efo-two"}, AlarmEmail: "ops@example.com",
		IteratorAgeWarning: 0.1, IteratorAgeCritical: 0.3,
		Lambda: &Lambda{FunctionName: "all-fn", RoleName: "all-role", StartingPosition: "TRIM_HORIZON", Bisect: true,
			ReportBatchItemFailures: true, OnFailureQueue: true}}},
}

// generated writes every configuration's template into dir.
func generated(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, tc := range configs {
		b, err := Generate(tc.c)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		name := filepath.Join(dir, tc.name+".yaml")
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files[tc.name] = name
	}
	return files
}

// TestTemplatesPassCfnLint runs cfn-lint once over the five templates:
// no error and no warning (exit status 0; informational findings would
// exit 8 and fail too).
func TestTemplatesPassCfnLint(t *testing.T) {
	t.Parallel() // cfn-lint runs while moto's test does
	bin, err := peers.LookPath("cfn-lint")
	if err != nil {
		peers.Unavailable(t, err)
	}
	files := generated(t, t.TempDir())
	args := []string{"--"}
	for _, tc := range configs {
		args = append(args, files[tc.name])
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// generate writes c's template and reads it back with ksp's own reader.
func generate(t *testing.T, c Config) ([]byte, *cfn.Template) {
	t.Helper()
	b, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := cfn.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, tpl
}

// parsed is the generated template's resources by logical ID.
func parsed(t *testing.T, c Config) map[string]cfn.Resource {
	t.Helper()
	_, tpl := generate(t, c)
	out := map[string]cfn.Resource{}
	for _, r := range tpl.Resources {
		out[r.LogicalID] = r
	}
	return out
}

func TestIteratorAgeThresholds(t *testing.T) {
	// Hand-computed: retention hours × 3,600,000 ms × fraction.
	want := map[string][2]float64{
		"provisioned-kcl":  {48 * 3600000 * 0.25, 48 * 3600000 * 0.5},   // 43.2M, 86.4M
		"ondemand-fanout":  {168 * 3600000 * 0.25, 168 * 3600000 * 0.5}, // 151.2M, 302.4M
		"lambda-onfailure": {21600000, 43200000},                        // 24 h: 6 h and 12 h
		"customer-kms":     {21600000, 43200000},
		"everything":       {168 * 3600000 * 0.1, 168 * 3600000 * 0.3}, // 16.8 h and 50.4 h
	}
	for _, tc := range configs {
		res := parsed(t, tc.c)
		w := want[tc.name]
		check := func(id string, threshold float64) {
			r, ok := res[id]
			if !ok {
				t.Fatalf("%s: no %s", tc.name, id)
			}
			got, err := strconv.ParseFloat(r.Properties["Threshold"].(string), 64)
			if err != nil || got != threshold {
				t.Errorf("%s %s threshold = %v, want %v", tc.name, id, r.Properties["Threshold"], threshold)
			}
		}
		check("IteratorAgeWarningAlarm", w[0])
		check("IteratorAgeCriticalAlarm", w[1])
		if tc.c.Lambda != nil {
			check("LambdaIteratorAgeWarningAlarm", w[0])
			check("LambdaIteratorAgeCriticalAlarm", w[1])
		}
		fanouts := 0
		for id, r := range res {
			if r.Type == "AWS::Kinesis::StreamConsumer" {
				fanouts++
				check(id+"IteratorAgeWarningAlarm", w[0])
				check(id+"IteratorAgeCriticalAlarm", w[1])
				if m := res[id+"IteratorAgeWarningAlarm"].Properties["MetricName"]; m != "SubscribeToShardEvent.MillisBehindLatest" {
					t.Errorf("%s %s metric %v", tc.name, id, m)
				}
			}
		}
		if fanouts != len(tc.c.FanoutConsumers) {
			t.Errorf("%s: %d fan-out consumers, want %d", tc.name, fanouts, len(tc.c.FanoutConsumers))
		}
		// A polling reader calls GetRecords even on an idle stream: no
		// data means it stopped, which must alarm.
		polling := tc.c.KCL && len(tc.c.FanoutConsumers) == 0 || tc.c.Lambda != nil
		if got := res["IteratorAgeCriticalAlarm"].Properties["TreatMissingData"]; (got == "breaching") != polling {
			t.Errorf("%s: iterator age TreatMissingData %v with polling readers %v", tc.name, got, polling)
		}
		for _, id := range []string{"WriteThrottledAlarm", "ReadThrottledAlarm", "PutRecordsFailedRecordsAlarm"} {
			check(id, 0)
		}
	}
}

func actions(st map[string]any) []string {
	var out []string
	switch a := st["Action"].(type) {
	case string:
		out = append(out, a)
	case []any:
		for _, x := range a {
			out = append(out, x.(string))
		}
	}
	return out
}

func statements(doc any) []map[string]any {
	var out []map[string]any
	for _, s := range doc.(map[string]any)["Statement"].([]any) {
		out = append(out, s.(map[string]any))
	}
	return out
}

// TestPolicies: every Allow names its actions (no "*" and no "service:*"),
// every IAM policy resource is an ARN of this template's resources (the one
// exception, PutMetricData, has no resource-level permission and is scoped
// by namespace), and each role gets exactly its actions.
func TestPolicies(t *testing.T) {
	for _, tc := range configs {
		res := parsed(t, tc.c)
		for id, r := range res {
			var doc any
			switch r.Type {
			case "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy":
				doc = r.Properties["PolicyDocument"]
			case "AWS::KMS::Key":
				doc = r.Properties["KeyPolicy"]
			default:
				continue
			}
			for _, st := range statements(doc) {
				if st["Effect"] != "Allow" {
					continue
				}
				for _, a := range actions(st) {
					if a == "*" || strings.HasSuffix(a, ":*") || strings.Contains(a, "*") {
						t.Errorf("%s %s allows a wildcard action %q", tc.name, id, a)
					}
				}
				if r.Type != "AWS::IAM::ManagedPolicy" {
					continue
				}
				resources, ok := st["Resource"].([]any)
				if !ok {
					resources = []any{st["Resource"]}
				}
				for _, rs := range resources {
					if s, ok := rs.(string); ok {
						ns, _ := st["Condition"].(map[string]any)["StringEquals"].(map[string]any)
						if s != "*" || !slices.Equal(actions(st), []string{"cloudwatch:PutMetricData"}) || ns["cloudwatch:namespace"] == nil {
							t.Errorf("%s %s: resource %q is not scoped", tc.name, id, s)
						}
						continue
					}
					if !refersToResource(rs, res) {
						t.Errorf("%s %s: resource %v is not one of the template's ARNs", tc.name, id, rs)
					}
				}
			}
		}
		wantActions := func(id string, want ...[]string) {
			r, ok := res[id]
			if !ok {
				t.Fatalf("%s: no %s", tc.name, id)
			}
			var got, all []string
			for _, st := range statements(r.Properties["PolicyDocument"]) {
				got = append(got, actions(st)...)
			}
			for _, w := range want {
				all = append(all, w...)
			}
			sort.Strings(got)
			sort.Strings(all)
			if !slices.Equal(got, all) {
				t.Errorf("%s %s actions = %v, want %v", tc.name, id, got, all)
			}
		}
		var kmsEncrypt, kmsDecrypt []string
		if tc.c.Encryption == EncryptionCustomerManaged {
			kmsEncrypt, kmsDecrypt = []string{"kms:GenerateDataKey"}, []string{"kms:Decrypt"}
		}
		wantActions(idProducerPolicy, ProducerActions, kmsEncrypt)
		if tc.c.KCL {
			var fanout []string
			if len(tc.c.FanoutConsumers) > 0 {
				fanout = append(fanout, ConsumerFanoutStreamActions...)
				fanout = append(fanout, ConsumerFanoutActions...)
			}
			wantActions(idConsumerPolicy, ConsumerStreamActions, fanout, LeaseTableActions, LeaseIndexActions, []string{"cloudwatch:PutMetricData"}, kmsDecrypt)
		}
		if tc.c.Lambda != nil {
			wantActions(idLambdaPolicy, LambdaActions, []string{"sqs:SendMessage"}, kmsDecrypt)
		}
	}
}

// refersToResource: a GetAtt of a resource, or a Sub whose variables name one.
func refersToResource(v any, res map[string]cfn.Resource) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok {
		_, exists := res[ga[0].(string)]
		return exists
	}
	if s, ok := m["Fn::Sub"].(string); ok {
		id, _, _ := strings.Cut(strings.TrimPrefix(s, "${"), ".")
		_, exists := res[id]
		return strings.HasPrefix(s, "${") && exists
	}
	return false
}

// testLeaseTableLikeLeaseStore compares the template's lease table with the
// table ksp's own lease store (and so the KCL) creates, in dynalite, and
// checks the KCL 3.x owner index.
func TestLeaseTable(t *testing.T) {
	p := peers.StartT(t, peers.Dynalite, peers.Options{})
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	t.Run("LikeLeaseStore", func(t *testing.T) { testLeaseTableLikeLeaseStore(t, client) })
	t.Run("LeaseStoreOnTemplateTable", func(t *testing.T) { testLeaseStoreOnTemplateTable(t, client) })
}

func testLeaseTableLikeLeaseStore(t *testing.T, client *dynamodb.Client) {
	store, err := dynamo.New(client, "kcl-app")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := store.CreateTableIfNotExists(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("kcl-app")})
	if err != nil {
		t.Fatal(err)
	}
	var storeKeys, storeAttrs []string
	for _, k := range out.Table.KeySchema {
		storeKeys = append(storeKeys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	for _, a := range out.Table.AttributeDefinitions {
		storeAttrs = append(storeAttrs, aws.ToString(a.AttributeName)+" "+string(a.AttributeType))
	}
	table := parsed(t, configs[0].c)[idLeaseTable].Properties
	pairs := func(v any, a, b string) []string {
		var out []string
		for _, e := range v.([]any) {
			m := e.(map[string]any)
			out = append(out, m[a].(string)+" "+m[b].(string))
		}
		return out
	}
	if got := pairs(table["KeySchema"], "AttributeName", "KeyType"); !slices.Equal(got, storeKeys) {
		t.Errorf("template key schema %v, lease store's %v", got, storeKeys)
	}
	attrs := pairs(table["AttributeDefinitions"], "AttributeName", "AttributeType")
	for _, a := range storeAttrs {
		if !slices.Contains(attrs, a) {
			t.Errorf("template attribute definitions %v lack the lease store's %s", attrs, a)
		}
	}
	if table["BillingMode"] != "PAY_PER_REQUEST" || out.Table.BillingModeSummary == nil || string(out.Table.BillingModeSummary.BillingMode) != "PAY_PER_REQUEST" {
		t.Errorf("billing mode: template %v, lease store %+v", table["BillingMode"], out.Table.BillingModeSummary)
	}
	gsi := table["GlobalSecondaryIndexes"].([]any)[0].(map[string]any)
	if gsi["IndexName"] != "LeaseOwnerToLeaseKeyIndex" ||
		!slices.Equal(pairs(gsi["KeySchema"], "AttributeName", "KeyType"), []string{"leaseOwner HASH", "leaseKey RANGE"}) ||
		gsi["Projection"].(map[string]any)["ProjectionType"] != "KEYS_ONLY" || !slices.Contains(attrs, "leaseOwner S") {
		t.Errorf("owner index = %v, want the KCL's LeaseOwnerToLeaseKeyIndex (leaseOwner HASH, leaseKey RANGE, KEYS_ONLY)", gsi)
	}
	if table["PointInTimeRecoverySpecification"].(map[string]any)["PointInTimeRecoveryEnabled"] != true || table["DeletionProtectionEnabled"] != true {
		t.Errorf("lease table lacks point-in-time recovery or deletion protection: %v", table)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		c     Config
		field string
	}{
		{Config{}, "app"},
		{Config{App: "a b"}, "app"},
		{Config{App: "a", Shards: -1}, "shards"},
		{Config{App: "a", OnDemand: true, Shards: 2}, "shards"},
		{Config{App: "a", RetentionHours: 10}, "retentionHours"},
		{Config{App: "a", RetentionHours: 9000}, "retentionHours"},
		{Config{App: "a", Encryption: "rot13"}, "encryption"},
		{Config{App: "a", FanoutConsumers: []string{"x", "x"}}, "fanoutConsumers"},
		{Config{App: "a", IteratorAgeWarning: 0.6, IteratorAgeCritical: 0.5}, "iteratorAgeWarning"},
		{Config{App: "a", Lambda: &Lambda{RoleName: "r"}}, "lambda.functionName"},
		{Config{App: "a", Lambda: &Lambda{FunctionName: "f"}}, "lambda.roleName"},
		{Config{App: "a", Lambda: &Lambda{FunctionName: "f", RoleName: "r", BatchSize: 20000}}, "lambda.batchSize"},
		{Config{App: "a", Lambda: &Lambda{FunctionName: "f", RoleName: "r", MaxRecordAgeSeconds: intp(30)}}, "lambda.maxRecordAgeSeconds"},
		{Config{App: "a", Lambda: &Lambda{FunctionName: "f", RoleName: "r", Parallelization: 11}}, "lambda.parallelization"},
	} {
		_, err := Generate(tc.c)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("Generate(%+v) = %v, want an error on %s", tc.c, err, tc.field)
		}
	}
}

// testLeaseStoreOnTemplateTable creates the template's lease table as
// declared (key schema, attributes, owner index) in dynalite, runs ksp's
// lease store on it, and finds a taken lease through the owner index as the
// KCL 3.x does.
func testLeaseStoreOnTemplateTable(t *testing.T, client *dynamodb.Client) {
	ctx := context.Background()
	table := parsed(t, configs[0].c)[idLeaseTable].Properties
	in := &dynamodb.CreateTableInput{TableName: aws.String("from-template"), BillingMode: ddbtypes.BillingMode(table["BillingMode"].(string))}
	keys := func(v any) []ddbtypes.KeySchemaElement {
		var out []ddbtypes.KeySchemaElement
		for _, e := range v.([]any) {
			m := e.(map[string]any)
			out = append(out, ddbtypes.KeySchemaElement{AttributeName: aws.String(m["AttributeName"].(string)), KeyType: ddbtypes.KeyType(m["KeyType"].(string))})
		}
		return out
	}
	in.KeySchema = keys(table["KeySchema"])
	for _, e := range table["AttributeDefinitions"].([]any) {
		m := e.(map[string]any)
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{AttributeName: aws.String(m["AttributeName"].(string)), AttributeType: ddbtypes.ScalarAttributeType(m["AttributeType"].(string))})
	}
	for _, e := range table["GlobalSecondaryIndexes"].([]any) {
		m := e.(map[string]any)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{IndexName: aws.String(m["IndexName"].(string)), KeySchema: keys(m["KeySchema"]),
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionType(m["Projection"].(map[string]any)["ProjectionType"].(string))}})
	}
	if _, err := client.CreateTable(ctx, in); err != nil {
		t.Fatalf("the template's table does not create: %v", err)
	}
	store, err := dynamo.New(client, "from-template")
	if err != nil {
		t.Fatal(err)
	}
	if created, err := store.CreateTableIfNotExists(ctx); err != nil || created {
		t.Fatalf("the lease store did not take the template's table as its own: created %v, %v", created, err)
	}
	if _, err := store.CreateLeaseIfNotExists(ctx, lease.Lease{LeaseKey: "shardId-000000000000", Checkpoint: lease.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.TakeLease(ctx, "shardId-000000000000", "", 0, "worker-1"); err != nil {
		t.Fatal(err)
	}
	out, err := client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("from-template"), IndexName: aws.String(LeaseOwnerIndex),
		KeyConditionExpression: aws.String("leaseOwner = :o"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":o": &ddbtypes.AttributeValueMemberS{Value: "worker-1"}}})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("owner index query: %v, %d items; want the taken lease", err, len(out.Items))
	}
	if k, ok := out.Items[0]["leaseKey"].(*ddbtypes.AttributeValueMemberS); !ok || k.Value != "shardId-000000000000" {
		t.Fatalf("owner index item = %v", out.Items[0])
	}
}

// TestDashboardAndOutputs: the dashboard graphs every alarmed metric, and
// the outputs give what users wire up (ARNs, table name, policy ARNs).
func TestDashboardAndOutputs(t *testing.T) {
	_, tpl := generate(t, configs[4].c) // everything
	var alarms, graphs []string
	var body string
	for _, r := range tpl.Resources {
		switch r.Type {
		case "AWS::CloudWatch::Alarm":
			alarms = append(alarms, r.Properties["Namespace"].(string)+" "+r.Properties["MetricName"].(string)+" "+r.Properties["Threshold"].(string))
		case "AWS::CloudWatch::Dashboard":
			body = r.Properties["DashboardBody"].(map[string]any)["Fn::Sub"].(string)
		}
	}
	var dash struct {
		Widgets []struct {
			Properties struct {
				Metrics     [][]string
				Annotations struct{ Horizontal []struct{ Value float64 } }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatalf("dashboard body: %v\n%s", err, body)
	}
	for _, w := range dash.Widgets {
		m := w.Properties.Metrics[0]
		graphs = append(graphs, m[0]+" "+m[1]+" "+strconv.FormatFloat(w.Properties.Annotations.Horizontal[0].Value, 'f', -1, 64))
	}
	sort.Strings(alarms)
	sort.Strings(graphs)
	if len(alarms) != 15 || !slices.Equal(alarms, graphs) {
		t.Fatalf("alarms %v\ngraphs %v", alarms, graphs)
	}
	for _, out := range []string{"StreamName", "StreamArn", "StreamKeyArn", "ConsumerEfoOneArn", "ConsumerEfoTwoArn", "LeaseTableName", "LeaseTableArn",
		"ProducerPolicyArn", "ConsumerPolicyArn", "LambdaConsumerPolicyArn", "AlarmTopicArn", "OnFailureQueueArn", "OnFailureQueueUrl", "EventSourceMappingId"} {
		if _, ok := tpl.Outputs[out]; !ok {
			t.Errorf("no output %s", out)
		}
	}
}
