package cost

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the estimate as a table: the workload, each mode's
// items, totals and the cheaper mode, and the price table's source and date.
func (e *Estimate) WriteTable(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	wl := e.Workload
	agg := "off"
	if wl.Aggregation {
		agg = "on"
	}
	fmt.Fprintf(w, "workload\t%.6g records/s (peak %.6g) of %.6g bytes, retention %d h, %d polling and %d fan-out consumers, aggregation %s\n",
		wl.RecordsPerSecond, wl.PeakRecordsPerSecond, wl.RecordBytes, wl.RetentionHours, wl.PollingConsumers, wl.FanoutConsumers, agg)
	fmt.Fprintf(w, "to the stream\t%.6g records/s of %.6g bytes; %d shards needed; %.6g PUT payload units/month\n",
		e.KinesisRecordsPerSecond, e.KinesisRecordBytes, e.Shards, e.PutPayloadUnitsPerMonth)
	for _, b := range []Bill{e.Provisioned, e.OnDemand} {
		fmt.Fprintf(w, "\n%s\tquantity\tunit\tprice\tmonthly (%s)\n", b.Mode, e.Prices.Currency)
		for _, l := range b.Lines {
			fmt.Fprintf(w, "  %s\t%.6g\t%s\t%.6g\t%.2f\n", l.Item, l.Quantity, l.Unit, l.UnitPrice, l.Monthly)
		}
		fmt.Fprintf(w, "  total\t\t\t\t%.2f\n", b.Total)
	}
	fmt.Fprintf(w, "\ncheaper\t%s\n", e.Cheaper())
	fmt.Fprintf(w, "prices\t%s as of %s, %s\n", e.Prices.Region, e.Prices.AsOf, e.Prices.Source)
	return w.Flush()
}
