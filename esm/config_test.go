package esm

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ksp-project/ksp/lease/memory"
	"github.com/ksp-project/ksp/server/servertest"
)

func TestConfigDefaultsAreLambdas(t *testing.T) {
	cfg := Config{Stream: "s", Kinesis: servertest.NewClient("http://127.0.0.1:1", "us-east-1"), LeaseStore: memory.New(), StartingPosition: Latest}
	s, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.BatchSize != 100 || s.ParallelizationFactor != 1 || s.maxRetries != -1 || s.maxAge != 0 ||
		s.FunctionTimeout != 3*time.Second || s.MaximumBatchingWindowInSeconds != 0 || s.reportItem || s.BisectBatchOnFunctionError {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestConfigValidationMessages(t *testing.T) {
	base := Config{Stream: "s", Kinesis: servertest.NewClient("http://127.0.0.1:1", "us-east-1"), LeaseStore: memory.New(), StartingPosition: TrimHorizon}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		code   string
		msg    string
	}{
		{"batch size too big", func(c *Config) { c.BatchSize = 10001 }, "ValidationException",
			"1 validation error detected: Value '10001' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000"},
		{"negative batch size", func(c *Config) { c.BatchSize = -1 }, "ValidationException",
			"Value '-1' at 'batchSize' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"window", func(c *Config) { c.MaximumBatchingWindowInSeconds = 301 }, "ValidationException",
			"Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 300"},
		{"parallelization", func(c *Config) { c.ParallelizationFactor = 11 }, "ValidationException",
			"Value '11' at 'parallelizationFactor' failed to satisfy constraint: Member must have value less than or equal to 10"},
		{"retries", func(c *Config) { c.MaximumRetryAttempts = Int(-2) }, "ValidationException",
			"Value '-2' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value greater than or equal to -1"},
		{"retries too many", func(c *Config) { c.MaximumRetryAttempts = Int(10001) }, "ValidationException",
			"Value '10001' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 10000"},
		{"age too old", func(c *Config) { c.MaximumRecordAgeInSeconds = Int(604801) }, "ValidationException",
			"Value '604801' at 'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must have value less than or equal to 604800"},
		{"age too young", func(c *Config) { c.MaximumRecordAgeInSeconds = Int(59) }, "InvalidParameterValueException",
			"MaximumRecordAgeInSeconds must be -1 or between 60 and 604800, not 59"},
		{"tumbling", func(c *Config) { c.TumblingWindowInSeconds = 901 }, "ValidationException",
			"Value '901' at 'tumblingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 900"},
		{"starting position", func(c *Config) { c.StartingPosition = "OLDEST" }, "ValidationException",
			"Value 'OLDEST' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]"},
		{"response type", func(c *Config) { c.FunctionResponseTypes = []string{"ReportItems"} }, "ValidationException",
			"Value 'ReportItems' at 'functionResponseTypes.1.member' failed to satisfy constraint"},
		{"timeout", func(c *Config) { c.FunctionTimeout = 901 * time.Second }, "ValidationException",
			"Value '901' at 'timeout' failed to satisfy constraint: Member must have value between 1 and 900"},
		{"two errors", func(c *Config) { c.BatchSize = 0; c.ParallelizationFactor = -3; c.MaximumBatchingWindowInSeconds = -1 }, "ValidationException",
			"2 validation errors detected: Value '-1' at 'maximumBatchingWindowInSeconds'"},
		{"timestamp missing", func(c *Config) { c.StartingPosition = AtTimestamp }, "InvalidParameterValueException",
			"StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP"},
		{"timestamp without AT_TIMESTAMP", func(c *Config) { c.StartingPositionTimestamp = time.Unix(1, 0) }, "InvalidParameterValueException",
			"StartingPositionTimestamp is only allowed when StartingPosition is AT_TIMESTAMP, not TRIM_HORIZON"},
		{"six filters", func(c *Config) { c.FilterCriteria = make([]string, 6) }, "InvalidParameterValueException",
			"FilterCriteria holds 6 filters; at most 5 are allowed"},
		{"bad filter", func(c *Config) { c.FilterCriteria = []string{`{"data":{"a":[{"wildcard":"x"}]}}`} }, "InvalidParameterValueException",
			`Invalid filter pattern definition. filter pattern {"data":{"a":[{"wildcard":"x"}]}}: field "a": unknown operator "wildcard"`},
		{"not a hook", func(c *Config) { c.Hooks = []Hook{42} }, "InvalidParameterValueException",
			"Hooks[0] (int) implements no Hook interface"},
		{"no stream", func(c *Config) { c.Stream = "" }, "InvalidParameterValueException",
			"Stream, Kinesis and LeaseStore are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.change(&cfg)
			_, err := cfg.validate()
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if verr.Code != tc.code || !strings.Contains(verr.Message, tc.msg) {
				t.Fatalf("got %s %q, want %s containing %q", verr.Code, verr.Message, tc.code, tc.msg)
			}
		})
	}
}

func TestRunRefusesWhatIsNotImplemented(t *testing.T) {
	base := Config{Stream: "s", Kinesis: servertest.NewClient("http://127.0.0.1:1", "us-east-1"), LeaseStore: memory.New(), StartingPosition: TrimHorizon}
	for name, change := range map[string]func(*Config){
		"tumbling in parallel": func(c *Config) { c.TumblingWindowInSeconds = 60; c.ParallelizationFactor = 2 },
	} {
		cfg := base
		change(&cfg)
		if err := Run(t.Context(), cfg, noop); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: got %v, want ErrUnsupported", name, err)
		}
	}
}
