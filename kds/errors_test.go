package kds_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/ksp-project/ksp/kds"
)

// TestErrorIsSmithyAPIError checks that a wrapped *kds.Error is found by
// errors.As as a smithy.APIError with the code, message and fault an SDK
// caller expects.
func TestErrorIsSmithyAPIError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code  string
		fault smithy.ErrorFault
	}{
		{kds.ErrCodeProvisionedThroughput, smithy.FaultClient},
		{kds.ErrCodeValidation, smithy.FaultClient},
		{kds.ErrCodeInternalFailure, smithy.FaultServer},
		{kds.ErrCodeServiceUnavailable, smithy.FaultServer},
		{"SomeNewException", smithy.FaultClient},
	} {
		err := fmt.Errorf("put: %w", kds.Errorf(tc.code, "shard %s", "shardId-000000000001"))
		var api smithy.APIError
		if !errors.As(err, &api) {
			t.Fatalf("%s: errors.As to smithy.APIError failed", tc.code)
		}
		if api.ErrorCode() != tc.code || api.ErrorMessage() != "shard shardId-000000000001" || api.ErrorFault() != tc.fault {
			t.Errorf("%s: got %s %q %v, want fault %v", tc.code, api.ErrorCode(), api.ErrorMessage(), api.ErrorFault(), tc.fault)
		}
	}
}
