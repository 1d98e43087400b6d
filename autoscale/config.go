package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// KinesisAPI is the part of the aws-sdk-go-v2 Kinesis client the autoscaler
// uses; *kinesis.Client satisfies it.
type KinesisAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	DescribeLimits(ctx context.Context, in *kinesis.DescribeLimitsInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeLimitsOutput, error)
	UpdateShardCount(ctx context.Context, in *kinesis.UpdateShardCountInput, optFns ...func(*kinesis.Options)) (*kinesis.UpdateShardCountOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Per-shard write limits of Kinesis.
const (
	ShardBytesPerSecond   = 1 << 20
	ShardRecordsPerSecond = 1000
)

// Config configures a Scaler. Zero durations and ratios take the defaults.
type Config struct {
	// Stream is the provisioned stream to scale. Required.
	Stream string
	// Kinesis describes and scales the stream. Required.
	Kinesis KinesisAPI
	// Metrics measures the stream's load. Required.
	Metrics Source

	// TargetUtilization is the share of the shards' write capacity (bytes/s
	// and records/s, whichever is higher) the scaler aims at. Above it over
	// UpWindow the stream scales up to bring it back to the target. Default
	// 0.7.
	TargetUtilization float64
	// ScaleDownUtilization: when the utilization stayed below it for the
	// whole QuietPeriod, with no write throttled, the stream scales down
	// (to what keeps the period's peak at the target). Default half the
	// target.
	ScaleDownUtilization float64
	// Interval is how often the load is measured and a decision made.
	// Default 1 minute (CloudWatch's resolution).
	Interval time.Duration
	// UpWindow is how much load, measured since the last change, a scale
	// up needs. Default 5 minutes.
	UpWindow time.Duration
	// QuietPeriod is how long the load must stay low, measured since the
	// last change, before a scale down. Default 1 hour.
	QuietPeriod time.Duration
	// MinShards and MaxShards bound the shard count. Default 1 and
	// Rules.MaxShardsPerStream.
	MinShards, MaxShards int
	// Rules are UpdateShardCount's limits; a zero field takes DefaultRules'.
	Rules Rules
	// Calls are earlier UpdateShardCount calls on the stream (from a
	// previous run), counted against Rules.CallsPer24h.
	Calls []time.Time
	// DryRun decides and logs but never calls UpdateShardCount.
	DryRun bool
	// Logger receives one line per decision (nil: discard).
	Logger *slog.Logger
	// OnDecision, when set, is called with every decision.
	OnDecision func(Decision)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	setDefault(&c.TargetUtilization, 0.7)
	setDefault(&c.ScaleDownUtilization, c.TargetUtilization/2)
	setDefault(&c.Interval, time.Minute)
	setDefault(&c.UpWindow, 5*time.Minute)
	setDefault(&c.QuietPeriod, time.Hour)
	setDefault(&c.Rules.CallsPer24h, DefaultRules().CallsPer24h)
	setDefault(&c.Rules.MaxShardsPerStream, DefaultRules().MaxShardsPerStream)
	setDefault(&c.MinShards, 1)
	setDefault(&c.MaxShards, c.Rules.MaxShardsPerStream)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("autoscale: "+format, args...)) }
	if c.Stream == "" {
		bad("no stream: Config.Stream is required")
	}
	if c.Kinesis == nil {
		bad("no Kinesis client: Config.Kinesis is required")
	}
	if c.Metrics == nil {
		bad("no metrics source: Config.Metrics is required")
	}
	if c.TargetUtilization <= 0 || c.TargetUtilization > 1 {
		bad("TargetUtilization %g must be in (0, 1]", c.TargetUtilization)
	}
	if c.ScaleDownUtilization <= 0 || c.ScaleDownUtilization >= c.TargetUtilization {
		bad("ScaleDownUtilization %g must be positive and below TargetUtilization %g", c.ScaleDownUtilization, c.TargetUtilization)
	}
	for name, d := range map[string]time.Duration{"Interval": c.Interval, "UpWindow": c.UpWindow, "QuietPeriod": c.QuietPeriod} {
		if d < 0 {
			bad("%s %v must not be negative", name, d)
		}
	}
	if c.UpWindow > c.QuietPeriod {
		bad("UpWindow %v must not be longer than QuietPeriod %v", c.UpWindow, c.QuietPeriod)
	}
	if err := c.Rules.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MinShards < 1 || c.MaxShards < c.MinShards || c.MaxShards > c.Rules.MaxShardsPerStream {
		bad("MinShards %d and MaxShards %d must satisfy 1 ≤ min ≤ max ≤ %d (Rules.MaxShardsPerStream)", c.MinShards, c.MaxShards, c.Rules.MaxShardsPerStream)
	}
	return errors.Join(errs...)
}
