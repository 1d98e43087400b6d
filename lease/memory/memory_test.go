package memory_test

import (
	"testing"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/leasetest"
	"github.com/ksp-project/ksp/lease/memory"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	leasetest.Run(t, func(t *testing.T) lease.Store { return memory.New() })
}
