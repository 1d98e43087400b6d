package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/deploy/cfn"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

var motoCreds = credentials.NewStaticCredentialsProvider("x", "x", "")

// motoCall sends one signed request to moto for a service the module has
// no SDK client of (IAM, Lambda).
func motoCall(t *testing.T, endpoint, service, method, path, contentType string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(method, endpoint+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	sum := sha256.Sum256(body)
	creds, _ := motoCreds.Retrieve(context.Background())
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("moto %s %s: %s: %s", service, path, resp.Status, b)
	}
}

// motoFunction creates the execution role and the function a Lambda
// template's mapping needs: moto's CloudFormation checks they exist.
func motoFunction(t *testing.T, endpoint string, l *Lambda) {
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	form := url.Values{"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {l.RoleName}, "AssumeRolePolicyDocument": {trust}}
	motoCall(t, endpoint, "iam", http.MethodPost, "/", "application/x-www-form-urlencoded", []byte(form.Encode()))
	var zipped bytes.Buffer
	z := zip.NewWriter(&zipped)
	f, _ := z.Create("handler.py")
	f.Write([]byte("def handler(event, context):\n    return {}\n"))
	z.Close()
	fn, _ := json.Marshal(map[string]any{"FunctionName": l.FunctionName, "Runtime": "python3.12", "Handler": "handler.handler",
		"Role": "arn:aws:iam::123456789012:role/" + l.RoleName, "Code": map[string]any{"ZipFile": zipped.Bytes()}})
	motoCall(t, endpoint, "lambda", http.MethodPost, "/2015-03-31/functions", "application/json", fn)
}

// TestSameTemplateInMotoCloudFormation deploys generated templates into
// moto's CloudFormation and into ksp, and compares the streams.
//
// moto (5.x) does not model everything the templates declare:
//   - AWS::Kinesis::StreamConsumer is not a CloudFormation resource in moto
//     (a template with fan-out consumers fails there on its Outputs), so
//     the fan-out configurations are not deployed to it;
//   - StreamModeDetails: an ON_DEMAND stream comes out PROVISIONED with one
//     shard, so its shard count is not compared;
//   - StreamEncryption: moto's stream stays unencrypted.
//
// Name, shard count (provisioned) and retention are compared.
func TestSameTemplateInMotoCloudFormation(t *testing.T) {
	t.Parallel()
	endpoint := peers.StartMoto(t)
	ctx := context.Background()
	cf := cloudformation.New(cloudformation.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: motoCreds})
	motoKinesis := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: motoCreds})
	srv := servertest.Start(t, server.Options{})
	kspKinesis := servertest.Client(t, srv)

	deployable := []struct {
		name string
		c    Config
	}{
		configs[0], // provisioned + KCL
		configs[2], // Lambda with on-failure queue
		configs[3], // customer-managed KMS key
		{"ondemand", Config{App: "ondemand", OnDemand: true, RetentionHours: 72, KCL: true}},
	}
	for _, tc := range deployable {
		t.Run(tc.name, func(t *testing.T) {
			body, tpl := generate(t, tc.c)
			if tc.c.Lambda != nil {
				motoFunction(t, endpoint, tc.c.Lambda)
			}
			if _, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(tc.name), TemplateBody: aws.String(string(body)),
				Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityNamedIam}}); err != nil {
				t.Fatalf("moto CreateStack: %v", err)
			}
			st, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(tc.name)})
			if err != nil || len(st.Stacks) != 1 || st.Stacks[0].StackStatus != cfntypes.StackStatusCreateComplete {
				t.Fatalf("moto stack: %v %+v", err, st)
			}
			outputs := map[string]string{}
			for _, o := range st.Stacks[0].Outputs {
				outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
			}

			plan, err := tpl.Resolve(cfn.Env{Region: srv.Region(), Account: srv.Account(), StackName: tc.name})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Apply(ctx, kspKinesis, plan, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			name := plan.Streams[0].Name
			if outputs["StreamName"] != name || !strings.HasSuffix(outputs["StreamArn"], ":stream/"+name) {
				t.Fatalf("moto outputs %v, want stream %s", outputs, name)
			}
			m, err := motoKinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			if err != nil {
				t.Fatalf("moto: %v", err)
			}
			k, err := kspKinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			if err != nil {
				t.Fatalf("ksp: %v", err)
			}
			ms, ks := m.StreamDescriptionSummary, k.StreamDescriptionSummary
			if aws.ToInt32(ms.RetentionPeriodHours) != aws.ToInt32(ks.RetentionPeriodHours) || int(aws.ToInt32(ks.RetentionPeriodHours)) != plan.Streams[0].RetentionHours {
				t.Errorf("retention: moto %d, ksp %d, template %d", aws.ToInt32(ms.RetentionPeriodHours), aws.ToInt32(ks.RetentionPeriodHours), plan.Streams[0].RetentionHours)
			}
			if !tc.c.OnDemand && (aws.ToInt32(ms.OpenShardCount) != aws.ToInt32(ks.OpenShardCount) || int(aws.ToInt32(ks.OpenShardCount)) != plan.Streams[0].ShardCount) {
				t.Errorf("shards: moto %d, ksp %d, template %d", aws.ToInt32(ms.OpenShardCount), aws.ToInt32(ks.OpenShardCount), plan.Streams[0].ShardCount)
			}
		})
	}
}
