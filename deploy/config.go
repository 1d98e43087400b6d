package deploy

import (
	"fmt"
	"regexp"

	"github.com/ksp-project/ksp/deploy/cfn"
	"github.com/ksp-project/ksp/kds"
)

// Config describes one Kinesis application. Flags of ksp template or a small
// YAML file (the yaml keys below) fill it; zero values take the defaults
// Normalize documents.
type Config struct {
	// App names the application: the default stream and lease table name,
	// the prefix of every other name, and the KCL's CloudWatch namespace.
	// Required: 1..64 of a-z, A-Z, 0-9, - and _.
	App string `yaml:"app"`
	// StreamName is the stream's name (the StreamName parameter's default;
	// default App).
	StreamName string `yaml:"streamName"`
	// OnDemand makes the stream ON_DEMAND; otherwise it is PROVISIONED
	// with Shards shards (default 1).
	OnDemand bool `yaml:"onDemand"`
	Shards   int  `yaml:"shards"`
	// RetentionHours is the stream's retention, 24..8760 (default 24).
	RetentionHours int `yaml:"retentionHours"`
	// Encryption is none, aws-managed (the aws/kinesis key; the default) or
	// customer-managed (a new KMS key with rotation and a key policy).
	Encryption string `yaml:"encryption"`
	// FanoutConsumers are enhanced fan-out consumers to register (at most 20).
	FanoutConsumers []string `yaml:"fanoutConsumers"`
	// KCL adds the KCL lease table and the KCL consumer's policy.
	KCL bool `yaml:"kcl"`
	// LeaseTable is the lease table's name (default App, as the KCL names
	// it after the application).
	LeaseTable string `yaml:"leaseTable"`
	// Lambda adds a Lambda event source mapping and its policy.
	Lambda *Lambda `yaml:"lambda"`
	// AlarmEmail, when set, subscribes that address to the alarm topic
	// (the AlarmEmail parameter's default).
	AlarmEmail string `yaml:"alarmEmail"`
	// IteratorAgeWarning and IteratorAgeCritical are the iterator-age
	// alarm thresholds as fractions of the retention period (defaults 0.25
	// and 0.5; 0 < warning < critical < 1). See Thresholds.
	IteratorAgeWarning  float64 `yaml:"iteratorAgeWarning"`
	IteratorAgeCritical float64 `yaml:"iteratorAgeCritical"`
}

// Lambda is an event source mapping from the stream to an existing function.
type Lambda struct {
	// FunctionName is the function the mapping invokes (required).
	FunctionName string `yaml:"functionName"`
	// RoleName is the function's execution role; the Lambda policy is
	// attached to it before the mapping is created (required).
	RoleName string `yaml:"roleName"`
	// StartingPosition is LATEST (default) or TRIM_HORIZON.
	StartingPosition string `yaml:"startingPosition"`
	// BatchSize 1..10000 (default 100); WindowSeconds 0..300 (default 0).
	BatchSize     int `yaml:"batchSize"`
	WindowSeconds int `yaml:"windowSeconds"`
	// Bisect splits a failing batch in two (BisectBatchOnFunctionError).
	Bisect bool `yaml:"bisect"`
	// ReportBatchItemFailures enables partial batch responses.
	ReportBatchItemFailures bool `yaml:"reportBatchItemFailures"`
	// MaxRetries is -1 (until the records expire) or 0..10000 (default 3:
	// an endless retry blocks the shard until retention ends).
	MaxRetries *int `yaml:"maxRetries"`
	// MaxRecordAgeSeconds is -1 (no limit; the default) or 60..604800.
	MaxRecordAgeSeconds *int `yaml:"maxRecordAgeSeconds"`
	// Parallelization is batches in flight per shard, 1..10 (default 1).
	Parallelization int `yaml:"parallelization"`
	// OnFailureQueue sends the records of discarded batches to an SQS queue
	// (with its own dead-letter queue and a TLS-only policy).
	OnFailureQueue bool `yaml:"onFailureQueue"`
}

// Encryption settings.
const (
	EncryptionNone            = "none"
	EncryptionAWSManaged      = "aws-managed"
	EncryptionCustomerManaged = "customer-managed"
)

// ConfigError is an invalid Config: the field (its yaml key) and the value.
type ConfigError struct {
	Field string
	Value any
	Msg   string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("deploy: %s %v: %s", e.Field, e.Value, e.Msg)
}

var (
	appPattern  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	namePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
)

// Normalize fills defaults and validates c.
func (c *Config) Normalize() error {
	if !appPattern.MatchString(c.App) {
		return &ConfigError{"app", fmt.Sprintf("%q", c.App), "want 1..64 characters of a-z, A-Z, 0-9, - and _"}
	}
	if c.StreamName == "" {
		c.StreamName = c.App
	}
	if !namePattern.MatchString(c.StreamName) {
		return &ConfigError{"streamName", fmt.Sprintf("%q", c.StreamName), "want 1..128 characters of a-z, A-Z, 0-9, _ . -"}
	}
	switch {
	case c.OnDemand && c.Shards != 0:
		return &ConfigError{"shards", c.Shards, "an on-demand stream takes no shard count"}
	case !c.OnDemand && c.Shards == 0:
		c.Shards = 1
	}
	if !c.OnDemand && (c.Shards < 1 || c.Shards > cfn.MaxShardCount) {
		return &ConfigError{"shards", c.Shards, fmt.Sprintf("out of range 1..%d", cfn.MaxShardCount)}
	}
	if c.RetentionHours == 0 {
		c.RetentionHours = kds.DefaultRetentionHours
	}
	if c.RetentionHours < kds.MinRetentionHours || c.RetentionHours > kds.MaxRetentionHours {
		return &ConfigError{"retentionHours", c.RetentionHours, fmt.Sprintf("out of range %d..%d", kds.MinRetentionHours, kds.MaxRetentionHours)}
	}
	switch c.Encryption {
	case "":
		c.Encryption = EncryptionAWSManaged
	case EncryptionNone, EncryptionAWSManaged, EncryptionCustomerManaged:
	default:
		return &ConfigError{"encryption", fmt.Sprintf("%q", c.Encryption), "want none, aws-managed or customer-managed"}
	}
	if len(c.FanoutConsumers) > 20 {
		return &ConfigError{"fanoutConsumers", len(c.FanoutConsumers), "a stream has at most 20 registered consumers"}
	}
	seen := map[string]bool{}
	for _, name := range c.FanoutConsumers {
		if !namePattern.MatchString(name) || seen[name] {
			return &ConfigError{"fanoutConsumers", fmt.Sprintf("%q", name), "want unique names of 1..128 characters of a-z, A-Z, 0-9, _ . -"}
		}
		seen[name] = true
	}
	if c.LeaseTable == "" {
		c.LeaseTable = c.App
	}
	if c.KCL && (!namePattern.MatchString(c.LeaseTable) || len(c.LeaseTable) < 3) {
		return &ConfigError{"leaseTable", fmt.Sprintf("%q", c.LeaseTable), "want 3..128 characters of a-z, A-Z, 0-9, _ . -"}
	}
	if c.IteratorAgeWarning == 0 {
		c.IteratorAgeWarning = 0.25
	}
	if c.IteratorAgeCritical == 0 {
		c.IteratorAgeCritical = 0.5
	}
	if !(0 < c.IteratorAgeWarning && c.IteratorAgeWarning < c.IteratorAgeCritical && c.IteratorAgeCritical < 1) {
		return &ConfigError{"iteratorAgeWarning", fmt.Sprintf("%g/%g", c.IteratorAgeWarning, c.IteratorAgeCritical), "want 0 < warning < critical < 1 (fractions of retention)"}
	}
	if c.Lambda != nil {
		return c.Lambda.normalize()
	}
	return nil
}

func (l *Lambda) normalize() error {
	if l.FunctionName == "" || len(l.FunctionName) > 140 {
		return &ConfigError{"lambda.functionName", fmt.Sprintf("%q", l.FunctionName), "required, at most 140 characters"}
	}
	if l.RoleName == "" || len(l.RoleName) > 64 {
		return &ConfigError{"lambda.roleName", fmt.Sprintf("%q", l.RoleName), "required (the function's execution role), at most 64 characters"}
	}
	switch l.StartingPosition {
	case "":
		l.StartingPosition = "LATEST"
	case "LATEST", "TRIM_HORIZON":
	default:
		return &ConfigError{"lambda.startingPosition", l.StartingPosition, "want LATEST or TRIM_HORIZON"}
	}
	if l.BatchSize == 0 {
		l.BatchSize = 100
	}
	if l.Parallelization == 0 {
		l.Parallelization = 1
	}
	if l.MaxRetries == nil {
		three := 3
		l.MaxRetries = &three
	}
	if l.MaxRecordAgeSeconds == nil {
		unlimited := -1
		l.MaxRecordAgeSeconds = &unlimited
	}
	for _, r := range []struct {
		field    string
		v        int
		min, max int
		minusOne bool
	}{
		{"lambda.batchSize", l.BatchSize, 1, 10000, false},
		{"lambda.windowSeconds", l.WindowSeconds, 0, 300, false},
		{"lambda.parallelization", l.Parallelization, 1, 10, false},
		{"lambda.maxRetries", *l.MaxRetries, 0, 10000, true},
		{"lambda.maxRecordAgeSeconds", *l.MaxRecordAgeSeconds, 60, 604800, true},
	} {
		if (r.v < r.min || r.v > r.max) && !(r.minusOne && r.v == -1) {
			return &ConfigError{r.field, r.v, fmt.Sprintf("out of range %d..%d", r.min, r.max)}
		}
	}
	return nil
}

// Thresholds are the iterator-age alarm thresholds in milliseconds.
//
// Records leave the stream when they are older than the retention period,
// so a consumer whose iterator age reaches it loses data. The warning fires
// at IteratorAgeWarning of retention (default a quarter: with 24 hours of
// retention, at 6 hours behind, leaving 18 hours to recover) and the
// critical alarm at IteratorAgeCritical (default half). The same
// thresholds apply to the Lambda mapping's IteratorAge.
func (c *Config) Thresholds() (warningMs, criticalMs float64) {
	retentionMs := float64(c.RetentionHours) * 3600 * 1000
	return retentionMs * c.IteratorAgeWarning, retentionMs * c.IteratorAgeCritical
}
