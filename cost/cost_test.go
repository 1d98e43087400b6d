package cost

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/metrics"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// The shipped table's prices, read once; the worked examples below apply
// them to quantities computed by hand.
var (
	p          = DefaultPrices()
	shardHour  = *p.Provisioned.ShardHour
	putMillion = *p.Provisioned.PutPayloadUnitsPerMillion
	extShardH  = *p.Provisioned.ExtendedRetentionShardHour
	longTermGB = *p.Provisioned.LongTermRetentionGBMonth
	efoShardH  = *p.Provisioned.FanoutConsumerShardHour
	efoGB      = *p.Provisioned.FanoutDataGB
	odStream   = *p.OnDemand.StreamHour
	odIn       = *p.OnDemand.DataInGB
	odOut      = *p.OnDemand.DataOutGB
	odEFO      = *p.OnDemand.FanoutDataGB
	odExt      = *p.OnDemand.ExtendedRetentionGBMonth
)

// month is 730 hours: 2,628,000 seconds.
const month = 2628000.0

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %.6f, want %.6f", what, got, want)
	}
}

func TestShippedPrices(t *testing.T) {
	if p.Region != "us-east-1" || p.AsOf == "" || !strings.Contains(p.Source, "aws.amazon.com/kinesis/data-streams/pricing") || p.HoursPerMonth != 730 {
		t.Fatalf("shipped table: %+v", p)
	}
}

// TestAggregationCutsCostTenfold: 10,000 records/s of 100 bytes.
// Without aggregation: 10 shards (1,000 records/s each), one PUT payload
// unit per record. With it: 474 records of 108 bytes (8 of framing) per
// 51,192-byte Kinesis record, 21.097 records/s of 2 units, 1.08 MB/s:
// 2 shards.
func TestAggregationCutsCostTenfold(t *testing.T) {
	w := Workload{RecordsPerSecond: 10000, RecordBytes: 100, PollingConsumers: 1}
	plain, err := Compute(w, p)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Shards != 10 {
		t.Fatalf("shards = %d, want 10", plain.Shards)
	}
	plainTotal := 10*730*shardHour + 10000*1*month/1e6*putMillion // 109.50 + 367.92
	near(t, "provisioned total without aggregation", plain.Provisioned.Total, plainTotal)

	w.Aggregation = true
	agg, err := Compute(w, p)
	if err != nil {
		t.Fatal(err)
	}
	kinesisRecs := 10000.0 / 474
	if agg.Shards != 2 || agg.KinesisRecordBytes != 474*108 {
		t.Fatalf("aggregated: %d shards, records of %v bytes; want 2 and 51192", agg.Shards, agg.KinesisRecordBytes)
	}
	near(t, "aggregated records/s", agg.KinesisRecordsPerSecond, kinesisRecs)
	aggTotal := 2*730*shardHour + kinesisRecs*2*month/1e6*putMillion // 21.90 + 1.55
	near(t, "provisioned total with aggregation", agg.Provisioned.Total, aggTotal)
	if ratio := plain.Provisioned.Total / agg.Provisioned.Total; ratio < 10 {
		t.Fatalf("aggregation cuts the provisioned cost %.1fx, want at least 10x", ratio)
	}
	// On-demand bills each record rounded up to 1 KiB: 1,024 bytes before,
	// 50 KiB after.
	gbPlain := 10000 * 1024 * month / GB
	near(t, "on-demand total without aggregation", plain.OnDemand.Total, 730*odStream+gbPlain*odIn+gbPlain*odOut)
	gbAgg := kinesisRecs * 51200 * month / GB
	near(t, "on-demand total with aggregation", agg.OnDemand.Total, 730*odStream+gbAgg*odIn+gbAgg*odOut)
}

// TestRetentionAndFanout: 500 records/s (peak 1,500) of 2,000 bytes, 72 h,
// two polling and two fan-out applications. Shards: the peak writes 3 MB/s
// (2.86 MiB/s) and the two polling readers read 6 MB/s: 3 shards.
func TestRetentionAndFanout(t *testing.T) {
	e, err := Compute(Workload{RecordsPerSecond: 500, PeakRecordsPerSecond: 1500, RecordBytes: 2000, RetentionHours: 72,
		PollingConsumers: 2, FanoutConsumers: 2}, p)
	if err != nil {
		t.Fatal(err)
	}
	if e.Shards != 3 {
		t.Fatalf("shards = %d, want 3", e.Shards)
	}
	shardHours := 3 * 730.0
	efoGBMonth := 2 * 500 * 2000 * month / GB
	near(t, "provisioned", e.Provisioned.Total,
		shardHours*shardHour+500*month/1e6*putMillion+shardHours*extShardH+2*shardHours*efoShardH+efoGBMonth*efoGB)
	in := 500 * 2048 * month / GB
	stored := 500 * 2000 * 48 * 3600.0 / GB
	near(t, "on-demand", e.OnDemand.Total, 730*odStream+in*odIn+2*in*odOut+2*in*odEFO+stored*odExt)
	if e.Cheaper() != "PROVISIONED" {
		t.Fatalf("cheaper = %s", e.Cheaper())
	}
}

// TestLongTermRetention: 30 days keep 552 hours beyond the first 7 days.
func TestLongTermRetention(t *testing.T) {
	e, err := Compute(Workload{RecordsPerSecond: 100, RecordBytes: 1000, RetentionHours: 720}, p)
	if err != nil {
		t.Fatal(err)
	}
	lt := 100 * 1000 * 552 * 3600.0 / GB
	near(t, "provisioned", e.Provisioned.Total, 730*shardHour+100*month/1e6*putMillion+730*extShardH+lt*longTermGB)
	in := 100 * 1024 * month / GB
	near(t, "on-demand", e.OnDemand.Total, 730*odStream+in*odIn+100*1000*144*3600.0/GB*odExt+lt*longTermGB)
}

func TestBadWorkload(t *testing.T) {
	for _, w := range []Workload{
		{RecordsPerSecond: -1, RecordBytes: 1},
		{RecordsPerSecond: 1, RecordBytes: 0},
		{RecordsPerSecond: 10, PeakRecordsPerSecond: 5, RecordBytes: 1},
		{RecordsPerSecond: 1, RecordBytes: 1, RetentionHours: 10},
		{RecordsPerSecond: 1, RecordBytes: 1, FanoutConsumers: 21},
	} {
		if _, err := Compute(w, p); err == nil {
			t.Errorf("Compute(%+v) accepted", w)
		}
	}
	if _, err := ParsePrices([]byte(`{"region":"x","source":"y","asOf":"z","hoursPerMonth":730}`)); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a table without prices: %v", err)
	}
}

// TestMeasureCountsWhatWasPut: the records put between the first and the
// last snapshot are exactly what Measure reports (a fetch puts the next
// batch right after it reads the counters, so the count does not depend on
// timing), at the size they were put.
func TestMeasureCountsWhatWasPut(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	client := servertest.Client(t, srv)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("m"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	const batch, dataBytes, key = 50, 90, "pk-0000000"
	put := func() {
		entries := make([]types.PutRecordsRequestEntry, batch)
		for i := range entries {
			entries[i] = types.PutRecordsRequestEntry{Data: make([]byte, dataBytes), PartitionKey: aws.String(fmt.Sprintf("pk-%07d", i))}
		}
		out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("m"), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Errorf("put: %v", err)
		}
	}
	fetches := 0
	fetch := func(ctx context.Context) (*metrics.Snapshot, error) {
		s, err := metrics.Fetch(ctx, nil, srv.URL())
		fetches++
		if fetches <= 3 { // after the first three reads: three batches inside the window
			put()
		}
		return s, err
	}
	m, err := Measure(ctx, fetch, "m", 30*time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if fetches != 4 || m.Records != 3*batch || m.Bytes != 3*batch*(dataBytes+float64(len(key))) {
		t.Fatalf("fetches %d, measured %v records and %v bytes; want 4, %d and %d", fetches, m.Records, m.Bytes, 3*batch, 3*batch*(dataBytes+len(key)))
	}
	w := m.Workload()
	near(t, "records/s", w.RecordsPerSecond, 3*batch/m.End.Sub(m.Start).Seconds())
	near(t, "record bytes", w.RecordBytes, dataBytes+float64(len(key)))
	if w.PeakRecordsPerSecond < w.RecordsPerSecond || w.PollingConsumers != 0 || w.FanoutConsumers != 0 {
		t.Fatalf("workload = %+v", w)
	}
	if _, err := Measure(ctx, fetch, "nope", time.Millisecond, time.Millisecond); err == nil || !strings.Contains(err.Error(), `"nope" is not in the server's metrics`) {
		t.Fatalf("unknown stream: %v", err)
	}
}

// TestPricesFileOverrides: a table read from a file prices with its values.
func TestPricesFileOverrides(t *testing.T) {
	doubled := strings.Replace(string(defaultPrices), `"shardHour": 0.015`, `"shardHour": 0.03`, 1)
	file := t.TempDir() + "/prices.json"
	if err := os.WriteFile(file, []byte(doubled), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := LoadPrices(file)
	if err != nil {
		t.Fatal(err)
	}
	w := Workload{RecordsPerSecond: 10000, RecordBytes: 100}
	a, _ := Compute(w, p)
	b, err := Compute(w, other)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "provisioned with doubled shard-hours", b.Provisioned.Total, a.Provisioned.Total+10*730*0.015)
	if _, err := LoadPrices(t.TempDir() + "/none.json"); err == nil {
		t.Fatal("a missing table was accepted")
	}
}
