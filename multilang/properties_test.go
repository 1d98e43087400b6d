package multilang

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease/memory"
)

// TestParseProperties reads a MultiLangDaemon properties file written as
// the KCL's samples write them, in every syntax java.util.Properties
// accepts.
func TestParseProperties(t *testing.T) {
	t.Parallel()
	const file = `# The KCL sample's properties
! a comment too
executableName = python3 sample_kclpy_app.py
streamArn=arn:aws:kinesis:eu-west-1:123456789012:stream/orders
applicationName: PythonKCLSample
initialPositionInStream TRIM_HORIZON
maxRecords = 500
idleTimeBetweenReadsInMillis = 250
failoverTimeMillis = 20000
shardSyncIntervalMillis = 30000
maxLeasesForWorker = 2147483647
maxLeasesToStealAtOneTime = 2
callProcessRecordsEvenForEmptyRecordList = false
kinesisEndpoint = http://127.0.0.1:4567
dynamoDBEndpoint = http://127.0.0.1:8000
AWSCredentialsProvider = ProfileCredentialsProvider|dev
workerId = worker\
  -1
processingLanguage = python/3.11
timeoutInSeconds = 30
shutdownGraceMillis = 2000
retrievalMode = polling
metricsLevel = NONE
someTypo = 1
tableName = t\u00e9st
`
	p, err := ParseProperties(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("executable", strings.Join(p.Executable, "|"), "python3|sample_kclpy_app.py")
	check("stream", p.StreamName, "orders")
	check("region (from the ARN)", p.Region, "eu-west-1")
	check("application", p.ApplicationName, "PythonKCLSample")
	check("initial position", p.InitialPosition.String(), consumer.TrimHorizon().String())
	check("maxRecords", p.MaxRecords, 500)
	check("idle", p.IdleTimeBetweenReads, 250*time.Millisecond)
	check("failover", p.FailoverTime, 20*time.Second)
	check("shard sync", p.ShardSyncInterval, 30*time.Second)
	check("maxLeasesForWorker (Integer.MAX_VALUE: no cap)", p.MaxLeasesForWorker, 0)
	check("steal", p.MaxLeasesToStealAtOneTime, 2)
	check("kinesis endpoint", p.KinesisEndpoint, "http://127.0.0.1:4567")
	check("dynamodb endpoint", p.DynamoDBEndpoint, "http://127.0.0.1:8000")
	check("credentials", p.KinesisCredentials, Credentials{Source: "profile", Profile: "dev"})
	check("dynamodb credentials (default: Kinesis's)", p.DynamoDBCredentials, Credentials{Source: "profile", Profile: "dev"})
	check("worker (continued line)", p.WorkerID, "worker-1")
	check("language", p.ProcessingLanguage, "python/3.11")
	check("timeout", p.Timeout, 30*time.Second)
	check("grace", p.ShutdownGrace, 2*time.Second)
	check("table (\\u escape)", p.TableName, "tést")
	warnings := strings.Join(p.Warnings, "\n")
	for _, w := range []string{"metricsLevel is ignored", "someTypo is not a MultiLangDaemon property"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings %q lack %q", p.Warnings, w)
		}
	}
	if len(p.Warnings) != 2 {
		t.Errorf("warnings %q, want exactly 2", p.Warnings)
	}
}

// TestParsePropertiesDefaults: a minimal file gets the KCL's defaults
// (LATEST, the table named after the application, the SDK's credentials
// chain) and an AT_TIMESTAMP start from epoch seconds.
func TestParsePropertiesDefaults(t *testing.T) {
	t.Parallel()
	p, err := ParseProperties(strings.NewReader("executableName=node app.js\napplicationName=app\nstreamName=s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.InitialPosition.String() != consumer.Latest().String() || p.TableName != "app" || p.KinesisCredentials.Source != "default" || len(p.Warnings) != 0 {
		t.Fatalf("defaults: %+v", p)
	}
	p, err = ParseProperties(strings.NewReader("executableName=x\napplicationName=app\nstreamName=s\ninitialPositionInStream=AT_TIMESTAMP\ninitialPositionInStreamExtended=1700000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := consumer.AtTimestamp(time.Unix(1700000000, 0)).String(); p.InitialPosition.String() != want {
		t.Fatalf("initial position %s, want %s", p.InitialPosition, want)
	}
}

// TestParsePropertiesWorkerMetrics: the KCL 3.x keys that make a Java
// worker publish its metrics for a leader (clientVersionConfig, upper-cased
// as the Java daemon does, and workerMetricsReporterFreqInMillis) turn on
// consumer.WithWorkerMetrics; the 2.x-compatible modes and a missing key
// leave it off, and the leader's own settings are warned about.
func TestParsePropertiesWorkerMetrics(t *testing.T) {
	t.Parallel()
	const ok = "executableName=x\napplicationName=a\nstreamName=s\n"
	for _, tc := range []struct {
		name, file string
		on         bool
		every      time.Duration
		warning    string
	}{
		{"absent", ok, false, 0, ""},
		{"3x as in the KCL's sample", ok + "clientVersionConfig = CLIENT_VERSION_CONFIG_3x\n", true, 0, ""},
		{"3x with its interval", ok + "clientVersionConfig = CLIENT_VERSION_CONFIG_3X\nworkerMetricsReporterFreqInMillis = 60000\n", true, time.Minute, ""},
		{"compatible with 2.x", ok + "clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2x\n", false, 0, ""},
		{"phase 1", ok + "clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X_PHASE1\n", false, 0, ""},
		{"interval without 3x", ok + "workerMetricsReporterFreqInMillis = 60000\n", false, time.Minute, "workerMetricsReporterFreqInMillis is ignored"},
		{"a leader's setting", ok + "clientVersionConfig = CLIENT_VERSION_CONFIG_3X\ndampeningPercentage = 60\n", true, 0, "dampeningPercentage is ignored: a setting of the KCL 3.x leader"},
	} {
		p, err := ParseProperties(strings.NewReader(tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p.WorkerMetrics != tc.on || p.WorkerMetricsInterval != tc.every {
			t.Errorf("%s: WorkerMetrics %v every %v, want %v every %v", tc.name, p.WorkerMetrics, p.WorkerMetricsInterval, tc.on, tc.every)
		}
		warnings := strings.Join(p.Warnings, "\n")
		if tc.warning == "" && warnings != "" || !strings.Contains(warnings, tc.warning) {
			t.Errorf("%s: warnings %q, want %q", tc.name, p.Warnings, tc.warning)
		}
	}
}

// TestParsePropertiesErrors: each bad file is one line naming every key
// that is wrong, and its value.
func TestParsePropertiesErrors(t *testing.T) {
	t.Parallel()
	const ok = "executableName=x\napplicationName=a\nstreamName=s\n"
	for _, tc := range []struct{ file, want string }{
		{"", "missing required executableName, applicationName, streamName (or streamArn)"},
		{"executableName = x\nstreamName = s\n", "missing required applicationName"},
		{ok + "maxRecords = 0\n", `maxRecords "0": want an integer from 1 to 10000`},
		{ok + "failoverTimeMillis = soon\n", `failoverTimeMillis "soon": want an integer`},
		{ok + "initialPositionInStream = EARLIEST\n", `initialPositionInStream "EARLIEST": want LATEST, TRIM_HORIZON or AT_TIMESTAMP`},
		{ok + "initialPositionInStream = AT_TIMESTAMP\n", "AT_TIMESTAMP needs initialPositionInStreamExtended"},
		{ok + "streamArn = orders\n", `streamArn "orders": not a Kinesis stream ARN`},
		{ok + "AWSCredentialsProvider = StsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s\n", "provider StsAssumeRoleCredentialsProvider is not supported"},
		{ok + "callProcessRecordsEvenForEmptyRecordList = yes please\n", "want true or false"},
		{ok + "retrievalMode = push\n", "want POLLING, FANOUT or DEFAULT"},
		{ok + "tableName = bad\\u12\n", `malformed \u escape`},
		{ok + "clientVersionConfig = 3\n", `clientVersionConfig "3": want CLIENT_VERSION_CONFIG_3X, CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X or`},
		{ok + "workerMetricsReporterFreqInMillis = 1\n", `workerMetricsReporterFreqInMillis "1": want an integer from 10`},
		{"executableName = x\nmaxRecords = -1\n", `missing required applicationName, streamName (or streamArn); maxRecords "-1"`},
	} {
		_, err := ParseProperties(strings.NewReader(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseProperties(%q) = %v, want one line with %q", tc.file, err, tc.want)
		}
	}
}

// FuzzParseProperties: any file parses or fails with one line, never
// panics, and a parsed file has everything required.
func FuzzParseProperties(f *testing.F) {
	f.Add("executableName=x\napplicationName=a\nstreamName=s\nmaxRecords=5\n")
	f.Add("key\\\n  = v\\u0041\n# c\n!c\nexecutableName x y\n")
	f.Add("streamArn=arn:aws:kinesis:us-east-1:1:stream/s\ninitialPositionInStreamExtended=99\n")
	f.Fuzz(func(t *testing.T, file string) {
		p, err := ParseProperties(strings.NewReader(file))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error on several lines: %q", err)
			}
			return
		}
		if len(p.Executable) == 0 || p.ApplicationName == "" || p.StreamName == "" || p.TableName == "" {
			t.Fatalf("parsed without a required key: %+v", p)
		}
	})
}

// TestWorkerMetricsPropertyReachesTheConsumer: clientVersionConfig =
// CLIENT_VERSION_CONFIG_3X gives the daemon's consumer WithWorkerMetrics,
// which refuses a lease store that cannot hold a KCL 3.x fleet's items
// (here an in-memory one) before anything starts; without the key the
// option is not given.
func TestWorkerMetricsPropertyReachesTheConsumer(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		extra string
		want  bool
	}{{"", false}, {"clientVersionConfig = CLIENT_VERSION_CONFIG_3X\n", true}} {
		props, err := ParseProperties(strings.NewReader("executableName = " + sh + "\napplicationName = a\nstreamName = s\n" + tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a consumer that starts at all stops at once
		err = Run(ctx, Config{Properties: props, Kinesis: kinesis.New(kinesis.Options{Region: "us-east-1"}), LeaseStore: memory.New()})
		if got := err != nil && strings.Contains(err.Error(), "WithWorkerMetrics needs a lease store that implements lease.FleetStore"); got != tc.want {
			t.Errorf("%q: Run = %v; want the consumer's WithWorkerMetrics store check: %v", tc.extra, err, tc.want)
		}
	}
}
