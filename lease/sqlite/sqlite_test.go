package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/leasetest"
	"github.com/ksp-project/ksp/lease/sqlite"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	leasetest.Run(t, func(t *testing.T) lease.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "leases.db"), "app")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
