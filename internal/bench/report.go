package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteTable prints the report as a table for people.
func (r *ServerReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ksp bench server: %d-byte records, PutRecords of %d from %d aws-sdk-go-v2 clients, %d shards, drain with GetRecords (Limit %d) one reader per shard\n",
		r.Size, r.Batch, r.Clients, r.Shards, readLimit)
	if r.Rounds > 1 {
		fmt.Fprintf(&b, "best of %d rounds per target (targets interleaved, each round on a freshly started target)\n", r.Rounds)
	}
	fmt.Fprintf(&b, "machine: %d CPUs, %s %s/%s, load average %.2f at start; the benchmark clients share the CPUs with the server under test\n\n",
		r.CPUs, r.GoVersion, r.OS, r.Arch, r.LoadAvg)

	rows := [][]string{{"target", "records", "put rec/s", "drain rec/s", "put %ceil", "drain %ceil", "server µs/rec put+drain",
		"put ×kinesalite", "drain ×kinesalite", "put ×kl-disk", "drain ×kl-disk", "retries", "memory"}}
	for _, res := range r.Results {
		rows = append(rows, []string{
			res.Target, comma(float64(res.Records)), comma(res.Put.PerSecond), comma(res.Drain.PerSecond),
			percent(res.PutCeiling), percent(res.DrainCeiling), cpuCell(res.Put.ServerCPU, res.Drain.ServerCPU),
			ratio(res.PutRatio), ratio(res.DrainRatio), ratio(res.DiskPutRatio), ratio(res.DiskDrainRatio),
			strconv.Itoa(res.Put.FailedCall + res.Put.Retried + res.Drain.FailedCall),
			res.Memory.String(),
		})
	}
	writeColumns(&b, rows)
	b.WriteString("\n%ceil: the rate as a share of the null target's (the clients' ceiling: a server that answers prepared\n")
	b.WriteString("responses and does no work) in the same place (this process, or a child process) over the same transport.\n")
	b.WriteString("server µs/rec: CPU time of the server process per record, put + drain (child-process targets only).\n")

	b.WriteString("\nmemory: ksp runs in this process, so its RSS growth includes the clients' buffers; its heap is the live Go heap\n")
	b.WriteString("growth after the put phase (the records the in-memory store holds). Peers: RSS of the peer process. Peaks sampled\n")
	b.WriteString("every 100 ms during the put phase. retries: failed calls retried plus PutRecords entries re-put (SDK retries off).\n")
	b.WriteString("ksp-always / ksp-interval: ksp on its disk store (fsync before each acknowledgement / every 50 ms); kl-disk:\n")
	b.WriteString("kinesalite keeping its data on disk (--path). Their ratios compare with kinesalite-disk.\n")
	if len(r.Goals) > 0 {
		b.WriteString("\ngoals for ksp against kinesalite:")
		for i, g := range r.Goals {
			if i > 0 {
				b.WriteByte(';')
			}
			verdict := "not met"
			if g.Met {
				verdict = "met"
			}
			fmt.Fprintf(&b, " %s ≥ %g×: %s (%s)", g.Name, g.Want, ratio(g.Got), verdict)
			if g.Notes != "" {
				fmt.Fprintf(&b, " [%s]", g.Notes)
			}
		}
		b.WriteByte('\n')
	} else {
		b.WriteString("\ngoals (ksp ≥ 15× kinesalite put, ≥ 20× drain) not judged: run both ksp and kinesalite\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// setDefault sets *p to v when it holds its zero value.
func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// WriteJSON prints a benchmark's report as one indented JSON document.
func WriteJSON(w io.Writer, report any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

func (m Memory) String() string {
	if m.InProcess {
		return fmt.Sprintf("heap +%s, RSS +%s peak", mib(m.Heap), mib(m.PeakRSS))
	}
	return fmt.Sprintf("RSS %s peak", mib(m.PeakRSS))
}

// writeColumns aligns rows: the first and last columns left, the rest right.
func writeColumns(b *strings.Builder, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	for _, row := range rows {
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-len([]rune(cell)))
			switch i {
			case 0:
				b.WriteString(cell + pad)
			case len(row) - 1:
				b.WriteString(cell)
			default:
				b.WriteString(pad + cell)
			}
			if i < len(row)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}
}

// comma renders a non-negative number rounded to an integer with thousands
// separators.
func comma(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(f float64) string {
	switch {
	case f == 0:
		return "–"
	case f < 1:
		return strconv.FormatFloat(f, 'f', 2, 64) + "×"
	default:
		return strconv.FormatFloat(f, 'f', 1, 64) + "×"
	}
}

func percent(f float64) string {
	if f == 0 {
		return "–"
	}
	return strconv.FormatFloat(100*f, 'f', 0, 64) + "%"
}

func cpuCell(put, drain float64) string {
	if put == 0 && drain == 0 {
		return "–"
	}
	return strconv.FormatFloat(put, 'f', 2, 64) + "+" + strconv.FormatFloat(drain, 'f', 2, 64)
}

func mib(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
