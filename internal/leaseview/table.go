package leaseview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes rows as a table; ren, which observed them (nil: none),
// renders the renewal column.
func WriteTable(w io.Writer, rows []Row, ren *Renewals) error {
	if ren == nil {
		ren = &Renewals{}
	}
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
		fmt.Fprintf(tw, "%s%s\t%d\t%s\n", line, dash(strings.Join(r.Parents, ",")), r.Counter, ren.seenText(r))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
