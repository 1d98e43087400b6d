package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// The leaseOwnerToLeaseKey index answers ListLeaseKeysForWorker alone (a
// covering index, as the KCL's KEYS_ONLY GSI is), and a file written
// before the index existed gains it when opened.
func TestOwnerIndexUsedAndAdded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "leases.db")
	s, err := Open(ctx, path, "app")
	if err != nil {
		t.Fatal(err)
	}
	plan := func(db *sql.DB) string {
		t.Helper()
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+listForWorker, "app", "w1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	if p := plan(s.db); !strings.Contains(p, "COVERING INDEX leaseOwnerToLeaseKey") || strings.Contains(p, "TEMP B-TREE") {
		t.Fatalf("query plan = %q, want the covering index leaseOwnerToLeaseKey and no sort", p)
	}
	if _, err := s.db.ExecContext(ctx, "DROP INDEX leaseOwnerToLeaseKey"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p := plan(s.db); !strings.Contains(p, "COVERING INDEX leaseOwnerToLeaseKey") {
		t.Fatalf("reopened file: query plan = %q, want the index added back", p)
	}
}
