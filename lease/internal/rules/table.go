package rules

import (
	"context"
	"time"
)

// WaitUntilTableExists asks exists every interval until the table exists,
// exists fails, or ctx ends: the one implementation of
// lease.Store.WaitUntilTableExists, each store passing its own TableExists
// and an interval that suits how costly asking is.
func WaitUntilTableExists(ctx context.Context, exists func(context.Context) (bool, error), interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := exists(ctx)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
