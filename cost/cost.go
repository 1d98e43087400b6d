// Package cost prices a Kinesis Data Streams workload per month in both
// capacity modes, from a dated price table (the us-east-1 table ships with
// ksp; LoadPrices reads another), so that the choice between provisioned
// and on-demand, and the value of KPL aggregation, are numbers.
//
// The model follows the pricing page's own terms:
//   - Provisioned: shard-hours for the shards the peak needs (1 MiB/s and
//     1,000 records/s written, 2 MiB/s read by the polling applications
//     together, per shard), PUT payload units (each record counts
//     ceil(size/25 KiB) units), extended retention per shard-hour beyond 24
//     hours, long-term retention per GB-month beyond 7 days, and for each
//     enhanced fan-out consumer its consumer-shard-hours and GB retrieved.
//   - On-demand: stream-hours, GB written and GB read by polling
//     applications (each record rounded up to 1 KiB), GB read by fan-out
//     consumers, and retention per GB-month (24 h..7 days, then long-term).
//
// With aggregation, user records are packed KPL-style into Kinesis records
// of up to AggregatedRecordBytes (the KPL's default 51,200 bytes), each user
// record costing its size plus AggregationOverheadBytes of framing. Records
// that do not fit are sent alone. A month is the table's hoursPerMonth
// (730); a GB is 2^30 bytes.
package cost

import (
	"errors"
	"fmt"
	"math"

	"github.com/ksp-project/ksp/kds"
)

// Billing units (a shard's capacity is kds's).
const (
	PutPayloadUnitBytes    = 25 * 1024
	OnDemandRecordRounding = 1024
	GB                     = 1 << 30
	// AggregatedRecordBytes is the KPL's AggregationMaxSize default.
	AggregatedRecordBytes = 51200
	// AggregationOverheadBytes estimates the protobuf framing of one user
	// record inside an aggregated record (tag, length, key index).
	AggregationOverheadBytes = 8
)

// Workload is what the producers and consumers of one stream do.
type Workload struct {
	RecordsPerSecond     float64 `json:"RecordsPerSecond"`     // average user records/s
	PeakRecordsPerSecond float64 `json:"PeakRecordsPerSecond"` // sizes the shards (default the average)
	RecordBytes          float64 `json:"RecordBytes"`          // average user record size (data + partition key)
	RetentionHours       int     `json:"RetentionHours"`       // default 24
	PollingConsumers     int     `json:"PollingConsumers"`     // applications reading with GetRecords
	FanoutConsumers      int     `json:"FanoutConsumers"`      // enhanced fan-out consumers
	Aggregation          bool    `json:"Aggregation"`          // KPL-style aggregation
}

// Validate checks the workload and fills defaults.
func (w *Workload) Validate() error {
	switch {
	case w.RecordsPerSecond < 0 || math.IsNaN(w.RecordsPerSecond) || math.IsInf(w.RecordsPerSecond, 0):
		return fmt.Errorf("cost: records per second %v must be 0 or more", w.RecordsPerSecond)
	case w.RecordBytes <= 0 && w.RecordsPerSecond > 0 || w.RecordBytes > 10<<20 || math.IsNaN(w.RecordBytes):
		return fmt.Errorf("cost: record size %v must be 1 byte..10 MiB", w.RecordBytes)
	case w.PollingConsumers < 0 || w.FanoutConsumers < 0 || w.FanoutConsumers > 20:
		return fmt.Errorf("cost: consumers (polling %d, fan-out %d): fan-out 0..20, polling 0 or more", w.PollingConsumers, w.FanoutConsumers)
	}
	if w.PeakRecordsPerSecond == 0 {
		w.PeakRecordsPerSecond = w.RecordsPerSecond
	}
	if w.PeakRecordsPerSecond < w.RecordsPerSecond || math.IsInf(w.PeakRecordsPerSecond, 0) {
		return fmt.Errorf("cost: peak %v records/s is below the average %v", w.PeakRecordsPerSecond, w.RecordsPerSecond)
	}
	if w.RetentionHours == 0 {
		w.RetentionHours = 24
	}
	if w.RetentionHours < 24 || w.RetentionHours > 8760 {
		return fmt.Errorf("cost: retention %d hours is out of range 24..8760", w.RetentionHours)
	}
	return nil
}

// Line is one item of a bill.
type Line struct {
	Item      string  `json:"Item"`
	Quantity  float64 `json:"Quantity"`
	Unit      string  `json:"Unit"`
	UnitPrice float64 `json:"UnitPrice"`
	Monthly   float64 `json:"Monthly"`
}

// Bill is one capacity mode's monthly cost.
type Bill struct {
	Mode  string  `json:"Mode"`
	Lines []Line  `json:"Lines"`
	Total float64 `json:"Total"`
}

func (b *Bill) add(item string, qty float64, unit string, price float64) {
	if qty == 0 {
		return
	}
	m := qty * price
	b.Lines = append(b.Lines, Line{item, qty, unit, price, m})
	b.Total += m
}

// Estimate is a workload priced in both modes.
type Estimate struct {
	Workload Workload `json:"Workload"`
	Prices   struct {
		Region, Source, AsOf, Currency string
	} `json:"Prices"`
	// KinesisRecordsPerSecond and KinesisRecordBytes are what reaches the
	// stream (after aggregation).
	KinesisRecordsPerSecond float64 `json:"KinesisRecordsPerSecond"`
	KinesisRecordBytes      float64 `json:"KinesisRecordBytes"`
	Shards                  int     `json:"Shards"`
	PutPayloadUnitsPerMonth float64 `json:"PutPayloadUnitsPerMonth"`
	Provisioned             Bill    `json:"Provisioned"`
	OnDemand                Bill    `json:"OnDemand"`
}

// Cheaper names the cheaper mode.
func (e *Estimate) Cheaper() string {
	if e.OnDemand.Total < e.Provisioned.Total {
		return e.OnDemand.Mode
	}
	return e.Provisioned.Mode
}

// ErrNoPrices is returned by Compute without a price table.
var ErrNoPrices = errors.New("cost: no price table")

// Compute prices w with p.
func Compute(w Workload, p *Prices) (*Estimate, error) {
	if p == nil {
		return nil, ErrNoPrices
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	e := &Estimate{Workload: w}
	e.Prices.Region, e.Prices.Source, e.Prices.AsOf, e.Prices.Currency = p.Region, p.Source, p.AsOf, p.Currency
	hours := p.HoursPerMonth
	seconds := hours * 3600

	// What reaches the stream.
	recs, size, peakRecs := w.RecordsPerSecond, w.RecordBytes, w.PeakRecordsPerSecond
	if w.Aggregation && w.RecordBytes+AggregationOverheadBytes < AggregatedRecordBytes {
		packed := w.RecordBytes + AggregationOverheadBytes
		perRecord := math.Floor(AggregatedRecordBytes / packed) // user records per aggregated record
		size = perRecord * packed
		recs = w.RecordsPerSecond / perRecord
		peakRecs = w.PeakRecordsPerSecond / perRecord
	}
	e.KinesisRecordsPerSecond, e.KinesisRecordBytes = recs, size
	bytesPerSecond := recs * size
	peakBytes := peakRecs * size

	// Provisioned.
	need := math.Max(peakBytes/kds.ShardWriteBytesPerSecond, peakRecs/kds.ShardWriteRecordsPerSecond)
	need = math.Max(need, peakBytes*float64(w.PollingConsumers)/kds.ShardReadBytesPerSecond)
	e.Shards = int(math.Max(1, math.Ceil(need-1e-9)))
	units := math.Ceil(size / PutPayloadUnitBytes)
	e.PutPayloadUnitsPerMonth = recs * units * seconds
	pb := &e.Provisioned
	pb.Mode = "PROVISIONED"
	shardHours := float64(e.Shards) * hours
	pb.add("shard-hours", shardHours, "shard-hour", *p.Provisioned.ShardHour)
	pb.add("PUT payload units", e.PutPayloadUnitsPerMonth/1e6, "million units", *p.Provisioned.PutPayloadUnitsPerMillion)
	if w.RetentionHours > 24 {
		pb.add("extended retention (to 7 days)", shardHours, "shard-hour", *p.Provisioned.ExtendedRetentionShardHour)
	}
	longTermGB := 0.0
	if w.RetentionHours > 168 {
		longTermGB = bytesPerSecond * float64(w.RetentionHours-168) * 3600 / GB
		pb.add("long-term retention (beyond 7 days)", longTermGB, "GB-month", *p.Provisioned.LongTermRetentionGBMonth)
	}
	fanoutGB := float64(w.FanoutConsumers) * bytesPerSecond * seconds / GB
	pb.add("fan-out consumer-shard-hours", float64(w.FanoutConsumers)*shardHours, "consumer-shard-hour", *p.Provisioned.FanoutConsumerShardHour)
	pb.add("fan-out data retrieved", fanoutGB, "GB", *p.Provisioned.FanoutDataGB)

	// On-demand: each record rounded up to 1 KiB.
	billed := math.Ceil(size/OnDemandRecordRounding) * OnDemandRecordRounding
	inGB := recs * billed * seconds / GB
	ob := &e.OnDemand
	ob.Mode = "ON_DEMAND"
	ob.add("stream-hours", hours, "stream-hour", *p.OnDemand.StreamHour)
	ob.add("data written", inGB, "GB", *p.OnDemand.DataInGB)
	ob.add("data read (polling)", float64(w.PollingConsumers)*inGB, "GB", *p.OnDemand.DataOutGB)
	ob.add("fan-out data read", float64(w.FanoutConsumers)*inGB, "GB", *p.OnDemand.FanoutDataGB)
	if w.RetentionHours > 24 {
		stored := bytesPerSecond * float64(min(w.RetentionHours, 168)-24) * 3600 / GB
		ob.add("extended retention (to 7 days)", stored, "GB-month", *p.OnDemand.ExtendedRetentionGBMonth)
	}
	ob.add("long-term retention (beyond 7 days)", longTermGB, "GB-month", *p.OnDemand.LongTermRetentionGBMonth)
	return e, nil
}
