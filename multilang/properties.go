package multilang

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/kds"
)

// Properties is a MultiLangDaemon properties file as ksp reads it: the keys
// of the Java daemon's MultiLangDaemonConfiguration and
// KinesisClientLibConfigurator that ksp honours. Zero values mean the
// consumer's defaults.
type Properties struct {
	// Executable is executableName split on runs of spaces, as the Java
	// daemon splits it: the program and its arguments, started once per
	// leased shard in the daemon's working directory.
	Executable         []string
	ApplicationName    string
	StreamName         string
	StreamARN          string // the stream name comes from it when set
	TableName          string // the lease table; default ApplicationName
	WorkerID           string // default: host name and a random suffix
	InitialPosition    consumer.InitialPosition
	Region             string
	ProcessingLanguage string // logged only, as the Java daemon adds it to its user agent

	MaxRecords                int
	IdleTimeBetweenReads      time.Duration
	FailoverTime              time.Duration
	ShardSyncInterval         time.Duration
	MaxLeasesForWorker        int
	MaxLeasesToStealAtOneTime int
	// CallProcessRecordsEvenForEmptyRecordList is read but ksp never sends
	// an empty processRecords (a warning says so when it is true).
	CallProcessRecordsEvenForEmptyRecordList bool

	KinesisEndpoint  string
	DynamoDBEndpoint string
	// KinesisCredentials and DynamoDBCredentials are the credentials
	// providers (AWSCredentialsProvider, AWSCredentialsProviderDynamoDB;
	// the DynamoDB one defaults to the Kinesis one).
	KinesisCredentials  Credentials
	DynamoDBCredentials Credentials

	// Timeout bounds each wait for a child's next message (timeoutInSeconds);
	// a child silent for longer is killed and its shard restarted. 0: no
	// limit, as in the Java daemon.
	Timeout time.Duration
	// ShutdownGrace is how long a child gets to exit after its last message
	// before it is killed (shutdownGraceMillis). Default 5 s.
	ShutdownGrace time.Duration
	// FanOut reads with enhanced fan-out (retrievalMode = FANOUT), under the
	// consumer name ApplicationName.
	FanOut bool
	// WorkerMetrics makes the worker a member of a KCL 3.x fleet
	// (consumer.WithWorkerMetrics): clientVersionConfig =
	// CLIENT_VERSION_CONFIG_3X, the KCL 3.x mode whose leader assigns leases
	// by the workers' metrics. Unlike the Java daemon, whose default is that
	// mode, ksp leaves it off unless the key says so: a table without a
	// KCL 3.x leader needs none of it, and a worker that finds a leader's
	// lock without it stops with consumer.ErrFleetTable.
	WorkerMetrics bool
	// WorkerMetricsInterval is how often the worker publishes its metrics
	// (workerMetricsReporterFreqInMillis); 0: the consumer's default, 30 s,
	// as the KCL's.
	WorkerMetricsInterval time.Duration

	// Warnings name every key that was read but has no effect in ksp, and
	// every key that is not a MultiLangDaemon key at all.
	Warnings []string
}

// Credentials is one AWSCredentialsProvider value, mapped onto the
// aws-sdk-go-v2 configuration chain.
type Credentials struct {
	// Source is "default" (the SDK's chain: environment, shared files, web
	// identity, container, instance metadata), "environment" (only
	// AWS_ACCESS_KEY_ID and friends) or "profile".
	Source  string
	Profile string // for "profile"; "" for the default profile
}

// The keys ksp reads, and the KCL keys it accepts without using them, with
// why. Anything else is warned about as unknown.
var (
	honouredKeys = []string{
		"executableName", "applicationName", "streamName", "streamArn", "tableName", "workerId",
		"initialPositionInStream", "initialPositionInStreamExtended", "regionName", "processingLanguage",
		"maxRecords", "idleTimeBetweenReadsInMillis", "failoverTimeMillis", "shardSyncIntervalMillis",
		"maxLeasesForWorker", "maxLeasesToStealAtOneTime", "callProcessRecordsEvenForEmptyRecordList",
		"kinesisEndpoint", "dynamoDBEndpoint", "AWSCredentialsProvider", "AWSCredentialsProviderDynamoDB",
		"timeoutInSeconds", "shutdownGraceMillis", "retrievalMode",
		"clientVersionConfig", "workerMetricsReporterFreqInMillis",
	}
	ignoredKeys = map[string]string{
		"AWSCredentialsProviderCloudWatch":                 "ksp publishes no CloudWatch metrics (see package consumer's hooks)",
		"cloudWatchEndpoint":                               "ksp publishes no CloudWatch metrics",
		"metricsLevel":                                     "ksp publishes no CloudWatch metrics",
		"metricsEnabledDimensions":                         "ksp publishes no CloudWatch metrics",
		"metricsBufferTimeMillis":                          "ksp publishes no CloudWatch metrics",
		"metricsMaxQueueSize":                              "ksp publishes no CloudWatch metrics",
		"maxActiveThreads":                                 "ksp runs each child from its own goroutine",
		"maxLeaseRenewalThreads":                           "ksp renews every lease concurrently",
		"cleanupLeasesUponShardCompletion":                 "ksp always deletes a finished parent's lease once its children started, as the KCL's default",
		"ignoreUnexpectedChildShards":                      "ksp creates leases for every child shard",
		"initialLeaseTableReadCapacity":                    "the lease table is created on demand (PAY_PER_REQUEST)",
		"initialLeaseTableWriteCapacity":                   "the lease table is created on demand (PAY_PER_REQUEST)",
		"billingMode":                                      "the lease table is created on demand (PAY_PER_REQUEST)",
		"parentShardPollIntervalMillis":                    "ksp waits for parents with its own back-off",
		"taskBackoffTimeMillis":                            "ksp backs off exponentially (see package consumer)",
		"validateSequenceNumberBeforeCheckpointing":        "ksp always checks a checkpoint against the records delivered",
		"shardPrioritization":                              "ksp takes parents before children on its own",
		"skipShardSyncAtWorkerInitializationIfLeasesExist": "ksp always syncs shards at start",
		"listShardsBackoffTimeInMillis":                    "ksp backs off exponentially",
		"maxListShardsRetryAttempts":                       "ksp retries until shutdown",
		"logWarningForTaskAfterMillis":                     "not implemented",
		"schedulerInitializationBackoffTimeMillis":         "ksp backs off exponentially",
		"millisBehindLatestThresholdForReducedTps":         "not implemented",
		"retryGetRecordsInSeconds":                         "not implemented",
		"maxGetRecordsThreadPool":                          "not implemented",
		"leaseAssignmentIntervalMillis":                    "ksp balances every sixth of the failover time",
		"enablePriorityLeaseAssignment":                    "not implemented",
		"leaseTableDeletionProtectionEnabled":              "not implemented",
		"leaseTablePitrEnabled":                            "not implemented",
		"userAgent":                                        "not implemented",
		// The KCL 3.x leader's settings (WorkerUtilizationAwareAssignmentConfig,
		// WorkerMetricsTableConfig): ksp never becomes the leader.
		"inMemoryWorkerMetricsCaptureFrequencyMillis": "ksp samples its CPU once per report (workerMetricsReporterFreqInMillis)",
		"noOfPersistedMetricsPerWorkerMetrics":        "ksp keeps the KCL's default, 10 values",
		"disableWorkerMetrics":                        leaderOnly,
		"maxThroughputPerHostKBps":                    leaderOnly,
		"dampeningPercentage":                         leaderOnly,
		"reBalanceThresholdPercentage":                leaderOnly,
		"allowThroughputOvershoot":                    leaderOnly,
		"varianceBalancingFrequency":                  leaderOnly,
		"workerMetricsEMAAlpha":                       leaderOnly,
		"staleWorkerMetricsEntryCleanupDuration":      leaderOnly,
		"workerMetricsTableName":                      "ksp writes its metrics where the leader reads them, found from the lease table's name",
	}
)

// leaderOnly is why a KCL 3.x leader's settings are ignored.
const leaderOnly = "a setting of the KCL 3.x leader, which ksp never becomes"

// LoadProperties reads a properties file.
func LoadProperties(path string) (*Properties, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("properties file: %w", err)
	}
	defer f.Close()
	p, err := ParseProperties(f)
	if err != nil {
		return nil, fmt.Errorf("properties file %s: %w", filepath.Base(path), err)
	}
	return p, nil
}

// ParseProperties reads a properties file in the java.util.Properties
// format. Every problem is reported in one error, on one line; keys that
// are accepted but have no effect, and unknown keys, end up in Warnings.
func ParseProperties(r io.Reader) (*Properties, error) {
	kv, order, err := readJavaProperties(r)
	if err != nil {
		return nil, err
	}
	p := &Properties{InitialPosition: consumer.Latest(), KinesisCredentials: Credentials{Source: "default"}}
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s %q: %s", key, kv[key], fmt.Sprintf(format, args...)))
	}
	get := func(key string) (string, bool) { v, ok := kv[key]; return v, ok && v != "" }
	num := func(key string, lo, hi int64) (int64, bool) {
		v, ok := get(key)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			bad(key, "want an integer from %d to %d", lo, hi)
			return 0, false
		}
		return n, true
	}
	millis := func(key string, lo int64) time.Duration {
		n, _ := num(key, lo, 1<<40)
		return time.Duration(n) * time.Millisecond
	}

	for _, k := range order {
		switch {
		case slices.Contains(honouredKeys, k):
		case ignoredKeys[k] != "":
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s is ignored: %s", k, ignoredKeys[k]))
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s is not a MultiLangDaemon property ksp knows: ignored", k))
		}
	}

	if v, ok := get("executableName"); ok {
		p.Executable = strings.Fields(v)
	}
	p.ApplicationName, _ = get("applicationName")
	p.StreamName, _ = get("streamName")
	p.TableName, _ = get("tableName")
	p.WorkerID, _ = get("workerId")
	p.Region, _ = get("regionName")
	p.ProcessingLanguage, _ = get("processingLanguage")
	p.KinesisEndpoint, _ = get("kinesisEndpoint")
	p.DynamoDBEndpoint, _ = get("dynamoDBEndpoint")
	if v, ok := get("streamArn"); ok {
		region, _, name, err := kds.ParseStreamARN(v)
		if err != nil {
			bad("streamArn", "not a Kinesis stream ARN")
		} else {
			p.StreamARN, p.StreamName = v, name // the ARN wins, as in the Java daemon
			if p.Region == "" {
				p.Region = region
			}
		}
	}
	if v, ok := get("initialPositionInStream"); ok {
		switch strings.ToUpper(v) {
		case "LATEST":
			p.InitialPosition = consumer.Latest()
		case "TRIM_HORIZON":
			p.InitialPosition = consumer.TrimHorizon()
		case "AT_TIMESTAMP":
			if _, ok := get("initialPositionInStreamExtended"); !ok {
				bad("initialPositionInStream", "AT_TIMESTAMP needs initialPositionInStreamExtended (epoch seconds)")
			}
		default:
			bad("initialPositionInStream", "want LATEST, TRIM_HORIZON or AT_TIMESTAMP")
		}
	}
	if secs, ok := num("initialPositionInStreamExtended", 0, 1<<40); ok {
		p.InitialPosition = consumer.AtTimestamp(time.Unix(secs, 0))
	}
	if n, ok := num("maxRecords", 1, 10000); ok {
		p.MaxRecords = int(n)
	}
	p.IdleTimeBetweenReads = millis("idleTimeBetweenReadsInMillis", 1)
	p.FailoverTime = millis("failoverTimeMillis", 30)
	p.ShardSyncInterval = millis("shardSyncIntervalMillis", 1)
	p.ShutdownGrace = millis("shutdownGraceMillis", 1)
	if n, ok := num("maxLeasesForWorker", 1, 1<<31-1); ok && n < 1<<31-1 {
		p.MaxLeasesForWorker = int(n) // the KCL's default, Integer.MAX_VALUE, means no cap
	}
	if n, ok := num("maxLeasesToStealAtOneTime", 1, 1<<31-1); ok {
		p.MaxLeasesToStealAtOneTime = int(n)
	}
	if n, ok := num("timeoutInSeconds", 1, 1<<31-1); ok {
		p.Timeout = time.Duration(n) * time.Second
	}
	if v, ok := get("callProcessRecordsEvenForEmptyRecordList"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("callProcessRecordsEvenForEmptyRecordList", "want true or false")
		}
		if p.CallProcessRecordsEvenForEmptyRecordList = b; b {
			p.Warnings = append(p.Warnings, "callProcessRecordsEvenForEmptyRecordList is ignored: ksp never sends an empty processRecords")
		}
	}
	if v, ok := get("retrievalMode"); ok {
		switch strings.ToUpper(v) {
		case "POLLING", "DEFAULT":
		case "FANOUT":
			p.FanOut = true
		default:
			bad("retrievalMode", "want POLLING, FANOUT or DEFAULT")
		}
	}
	if v, ok := get("clientVersionConfig"); ok {
		// The Java daemon upper-cases the value before ClientVersionConfig.valueOf.
		switch strings.ToUpper(v) {
		case "CLIENT_VERSION_CONFIG_3X":
			p.WorkerMetrics = true
		case "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X", "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X_PHASE1":
		default:
			bad("clientVersionConfig", "want CLIENT_VERSION_CONFIG_3X, CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X or CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X_PHASE1")
		}
	}
	p.WorkerMetricsInterval = millis("workerMetricsReporterFreqInMillis", 10)
	if p.WorkerMetricsInterval > 0 && !p.WorkerMetrics {
		p.Warnings = append(p.Warnings, "workerMetricsReporterFreqInMillis is ignored: ksp publishes worker metrics only with clientVersionConfig = CLIENT_VERSION_CONFIG_3X")
	}
	for _, key := range []string{"AWSCredentialsProvider", "AWSCredentialsProviderDynamoDB"} {
		v, ok := get(key)
		if !ok {
			continue
		}
		c, err := parseCredentials(v)
		if err != nil {
			bad(key, "%v", err)
			continue
		}
		if key == "AWSCredentialsProvider" {
			p.KinesisCredentials = c
		} else {
			p.DynamoDBCredentials = c
		}
	}
	if p.DynamoDBCredentials.Source == "" {
		p.DynamoDBCredentials = p.KinesisCredentials
	}

	var missing []string
	if len(p.Executable) == 0 {
		missing = append(missing, "executableName")
	}
	if p.ApplicationName == "" {
		missing = append(missing, "applicationName")
	}
	if p.StreamName == "" && p.StreamARN == "" {
		missing = append(missing, "streamName (or streamArn)")
	}
	if len(missing) > 0 {
		errs = append([]string{"missing required " + strings.Join(missing, ", ")}, errs...)
	}
	if p.TableName == "" {
		p.TableName = p.ApplicationName
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return p, nil
}

// parseCredentials maps an AWSCredentialsProvider value (providers separated
// by commas, arguments by '|', class names with or without their package)
// onto the SDK's chain. Providers that need the JVM or a role to assume are
// refused rather than replaced by something else.
func parseCredentials(v string) (Credentials, error) {
	c := Credentials{Source: "default"}
	for _, one := range strings.Split(v, ",") {
		args := strings.Split(strings.TrimSpace(one), "|")
		name := args[0]
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		switch name {
		case "DefaultAWSCredentialsProviderChain", "DefaultCredentialsProvider",
			"InstanceProfileCredentialsProvider", "ContainerCredentialsProvider",
			"WebIdentityTokenFileCredentialsProvider", "EC2ContainerCredentialsProviderWrapper":
		case "EnvironmentVariableCredentialsProvider":
			c = Credentials{Source: "environment"}
		case "ProfileCredentialsProvider":
			c = Credentials{Source: "profile"}
			if len(args) > 1 {
				c.Profile = args[1]
			}
		default:
			return Credentials{}, fmt.Errorf("provider %s is not supported: use DefaultCredentialsProvider, EnvironmentVariableCredentialsProvider or ProfileCredentialsProvider|PROFILE (a profile can assume a role)", name)
		}
	}
	return c, nil
}

// readJavaProperties reads the java.util.Properties text format: '#' and
// '!' comments, "key=value", "key: value" and "key value", backslash line
// continuations and escapes (\t \n \r \f \uXXXX). It returns the values and
// the keys in file order; a later line wins for a repeated key, as in Java.
func readJavaProperties(r io.Reader) (map[string]string, []string, error) {
	kv := map[string]string{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var logical strings.Builder
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if logical.Len() == 0 && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if trailingBackslashes(line)%2 == 1 {
			logical.WriteString(line[:len(line)-1])
			continue
		}
		logical.WriteString(line)
		k, v, err := splitProperty(logical.String())
		logical.Reset()
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %v", lineNo, err)
		}
		if _, seen := kv[k]; !seen {
			order = append(order, k)
		}
		kv[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading properties: %v", err)
	}
	if logical.Len() > 0 {
		k, v, err := splitProperty(logical.String())
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %v", lineNo, err)
		}
		if _, seen := kv[k]; !seen {
			order = append(order, k)
		}
		kv[k] = strings.TrimSpace(v)
	}
	return kv, order, nil
}

func trailingBackslashes(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n
}

// splitProperty splits one logical line at the first unescaped '=', ':' or
// white space, and unescapes both halves.
func splitProperty(line string) (string, string, error) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == '=' || line[i] == ':' || line[i] == ' ' || line[i] == '\t' || line[i] == '\f' {
			end = i
			break
		}
	}
	key, rest := line[:end], line[end:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	k, err := unescape(key)
	if err != nil {
		return "", "", err
	}
	v, err := unescape(rest)
	if err != nil {
		return "", "", err
	}
	if k == "" {
		return "", "", fmt.Errorf("no key before %q", rest)
	}
	return k, v, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	if !utf8.ValidString(b.String()) {
		return "", fmt.Errorf("%q is not valid UTF-8", s)
	}
	return b.String(), nil
}
