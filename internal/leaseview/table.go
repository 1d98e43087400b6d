package leaseview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes rows as a table. now and since (when the process
// started watching; zero for one look) render the renewal column.
func WriteTable(w io.Writer, rows []Row, now, since time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	lag := false
	for _, r := range rows {
		lag = lag || r.Lag != nil
	}
	head := "SHARD\tOWNER\tCHECKPOINT\t"
	if lag {
		head += "BEHIND\t"
	}
	fmt.Fprintln(tw, head+"PARENTS\tCOUNTER\tRENEWED")
	for _, r := range rows {
		owner := dash(r.Owner)
		if r.CheckpointOwner != "" {
			owner = r.CheckpointOwner + "→" + dash(r.Owner)
		}
		cp := dash(r.Checkpoint)
		if r.SubSequence != 0 {
			cp += fmt.Sprintf("/%d", r.SubSequence)
		}
		line := r.Shard + "\t" + owner + "\t" + cp + "\t"
		if lag {
			line += r.Lag.String() + "\t"
		}
		fmt.Fprintf(tw, "%s%s\t%d\t%s\n", line, dash(strings.Join(r.Parents, ",")), r.Counter, renewed(r, now, since))
	}
	return tw.Flush()
}

// renewed says when this process saw the counter change.
func renewed(r Row, now, since time.Time) string {
	switch {
	case r.RenewalSeen != nil:
		return now.Sub(*r.RenewalSeen).Round(100*time.Millisecond).String() + " ago"
	case since.IsZero() || !now.After(since):
		return "-"
	}
	return "not in " + now.Sub(since).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
