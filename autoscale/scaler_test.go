package autoscale_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/autoscale"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

// scripted is a controlled clock and a load: each Sample reports the load
// set in bytes/s over one minute, at the stream's current shard count, and
// moves the clock on by a minute.
type scripted struct {
	t         *testing.T
	client    *kinesis.Client
	now       time.Time
	bytes     float64
	throttled float64 // records/s
}

func (s *scripted) Now() time.Time { return s.now }

func (s *scripted) Sample(ctx context.Context, stream string) (autoscale.Sample, error) {
	s.now = s.now.Add(time.Minute)
	out, err := s.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return autoscale.Sample{}, err
	}
	return autoscale.Sample{Time: s.now, Interval: time.Minute, OpenShards: int(*out.StreamDescriptionSummary.OpenShardCount),
		IncomingBytes: s.bytes, IncomingRecords: s.bytes / 10000, WriteThrottled: s.throttled}, nil
}

// scaler returns a Scaler of a stream with shards shards on an embedded
// server, measured by a scripted load: decisions every minute, a 3-minute
// window, a 30-minute quiet period.
func scaler(t *testing.T, shards int32, cfg autoscale.Config) (*autoscale.Scaler, *scripted) {
	t.Helper()
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	servertest.CreateStream(t, client, "s", shards)
	load := &scripted{t: t, client: client, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Stream, cfg.Kinesis, cfg.Metrics, cfg.Now = "s", client, load, load.Now
	cfg.Interval, cfg.UpWindow, cfg.QuietPeriod = time.Minute, 3*time.Minute, 30*time.Minute
	s, err := autoscale.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, load
}

// steps runs the scaler until a decision that is not Hold (at most max
// steps) and returns it, or the last Hold, with the number of steps taken.
func steps(t *testing.T, s *autoscale.Scaler, max int) (autoscale.Decision, int) {
	t.Helper()
	var d autoscale.Decision
	for i := 1; i <= max; i++ {
		var err error
		d, err = s.Step(bg)
		if err != nil {
			t.Fatal(err)
		}
		if d.Err != nil {
			t.Fatalf("step %d: %v", i, d.Err)
		}
		if d.Action != autoscale.Hold {
			return d, i
		}
	}
	return d, max
}

const mib = 1 << 20

// TestScalerUpQuicklyDownSlowly: above the target the stream scales up as
// soon as the window is measured (3 decisions), straight to the count that
// brings the load to the target; below the scale-down utilization it
// scales down only after the whole quiet period, by at most half a step.
func TestScalerUpQuicklyDownSlowly(t *testing.T) {
	s, load := scaler(t, 2, autoscale.Config{})
	load.bytes = 2.1 * mib // 105% of 2 shards
	d, n := steps(t, s, 10)
	if d.Action != autoscale.ScaleUp || d.Target != 3 || n != 3 {
		t.Fatalf("got %s to %d after %d decisions (%s); want scale-up to 3 after 3", d.Action, d.Target, n, d.Reason)
	}
	load.bytes = 0.3 * mib // 10% of 3 shards
	d, n = steps(t, s, 60)
	if d.Action != autoscale.ScaleDown || d.Target != 2 || n < 30 {
		t.Fatalf("got %s to %d after %d decisions (%s); want scale-down to 2 (half of 3, rounded up) after the 30-minute quiet period", d.Action, d.Target, n, d.Reason)
	}
	d, n = steps(t, s, 60)
	if d.Action != autoscale.ScaleDown || d.Target != 1 || n < 30 {
		t.Fatalf("got %s to %d after %d decisions (%s); want scale-down to 1 after another quiet period", d.Action, d.Target, n, d.Reason)
	}
	if d, _ := steps(t, s, 60); d.Action != autoscale.Hold {
		t.Fatalf("got %s at one shard (%s); want hold", d.Action, d.Reason)
	}
}

// TestScalerDoublesAtMost: a load far above the capacity scales up by
// doubling, the most one call may add.
func TestScalerDoublesAtMost(t *testing.T) {
	s, load := scaler(t, 2, autoscale.Config{})
	load.bytes = 10 * mib
	d, _ := steps(t, s, 10)
	if d.Action != autoscale.ScaleUp || d.Target != 4 || d.Wanted != 15 || !strings.Contains(d.Reason, "4 allowed by the rules (wanted 15)") {
		t.Fatalf("got %s to %d, wanted %d (%s); want scale-up to 4 of the 15 wanted", d.Action, d.Target, d.Wanted, d.Reason)
	}
}

// TestScalerHotShard: writes throttled throughout the window add a shard
// even though the mean utilization is within the target (a hot shard);
// throttling in only some samples does not.
func TestScalerHotShard(t *testing.T) {
	s, load := scaler(t, 4, autoscale.Config{})
	load.bytes, load.throttled = 1*mib, 0 // 25%
	if d, _ := steps(t, s, 3); d.Action != autoscale.Hold {
		t.Fatalf("got %s at 25%% without throttling (%s); want hold", d.Action, d.Reason)
	}
	load.throttled = 5
	if d, _ := steps(t, s, 2); d.Action != autoscale.Hold {
		t.Fatalf("got %s with throttling in 2 of 3 samples (%s); want hold", d.Action, d.Reason)
	}
	d, _ := steps(t, s, 1)
	if d.Action != autoscale.ScaleUp || d.Target != 5 || !strings.Contains(d.Reason, "writes throttled throughout the window") {
		t.Fatalf("got %s to %d (%s); want scale-up to 5 for a hot shard", d.Action, d.Target, d.Reason)
	}
}

// TestScalerCallsPer24h: with two calls allowed per rolling 24 hours, a
// third scale-up is held (and says until when) and made once the first
// call is 24 hours old.
func TestScalerCallsPer24h(t *testing.T) {
	s, load := scaler(t, 1, autoscale.Config{Rules: autoscale.Rules{CallsPer24h: 2}})
	load.bytes = 100 * mib
	for want := 2; want <= 4; want *= 2 {
		if d, _ := steps(t, s, 10); d.Action != autoscale.ScaleUp || d.Target != want {
			t.Fatalf("got %s to %d (%s); want scale-up to %d", d.Action, d.Target, d.Reason, want)
		}
	}
	first := s.Calls()[0]
	d, _ := steps(t, s, 10)
	if d.Action != autoscale.Hold || !strings.Contains(d.Reason, "held by the rule calls per rolling 24 hours") {
		t.Fatalf("got %s to %d (%s); want the third call held by the rule", d.Action, d.Target, d.Reason)
	}
	load.now = first.Add(24*time.Hour - 2*time.Minute) // the clock jumps; the load stays measured
	d, n := steps(t, s, 10)
	if d.Action != autoscale.ScaleUp || d.Target != 8 || d.Time.Before(first.Add(24*time.Hour)) {
		t.Fatalf("got %s to %d at %v after %d decisions; want scale-up to 8 once the first call (%v) is 24 hours old", d.Action, d.Target, d.Time, n, first)
	}
	held, err := s.Step(bg)
	if err != nil {
		t.Fatal(err)
	}
	if held.Action != autoscale.Hold {
		t.Fatalf("got %s right after a call; want hold", held.Action)
	}
}

// TestScalerHeldByRuleSaysWhy: a scale-up refused by the calls rule is a
// Hold naming the rule and when the next call is allowed.
func TestScalerHeldByRuleSaysWhy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, load := scaler(t, 1, autoscale.Config{Calls: []time.Time{now.Add(-time.Hour)}, Rules: autoscale.Rules{CallsPer24h: 1}})
	load.bytes = 5 * mib
	var d autoscale.Decision
	for range 3 {
		var err error
		if d, err = s.Step(bg); err != nil {
			t.Fatal(err)
		}
	}
	if d.Action != autoscale.Hold || !strings.Contains(d.Reason, "held by the rule calls per rolling 24 hours") || !strings.Contains(d.Reason, "next is allowed at 2026-01-01T23:00:00Z") {
		t.Fatalf("got %s (%s); want a hold naming the rule and the time", d.Action, d.Reason)
	}
}

// TestScalerDryRun decides but never scales.
func TestScalerDryRun(t *testing.T) {
	s, load := scaler(t, 2, autoscale.Config{DryRun: true})
	load.bytes = 5 * mib
	for range 5 {
		d, _ := steps(t, s, 10)
		if d.Action != autoscale.ScaleUp || d.Target != 4 || d.Shards != 2 || !d.DryRun {
			t.Fatalf("got %s %d → %d dry-run %v; want a dry-run scale-up 2 → 4, the stream unchanged", d.Action, d.Shards, d.Target, d.DryRun)
		}
	}
	if n := len(s.Calls()); n != 0 {
		t.Fatalf("%d calls recorded in a dry run", n)
	}
}

// TestScalerOnDemand leaves an on-demand stream alone.
func TestScalerOnDemand(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	if _, err := client.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String("s"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	load := &scripted{t: t, client: client, now: time.Now(), bytes: 50 * mib}
	s, err := autoscale.New(autoscale.Config{Stream: "s", Kinesis: client, Metrics: load, Now: load.Now, Interval: time.Minute, UpWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := steps(t, s, 5)
	if d.Action != autoscale.Hold {
		t.Fatalf("got %s on an ON_DEMAND stream", d.Action)
	}
}

// TestConfigErrors: bad parameters are refused by New, naming the field
// and the value.
func TestConfigErrors(t *testing.T) {
	ok := func() autoscale.Config {
		return autoscale.Config{Stream: "s", Kinesis: &kinesis.Client{}, Metrics: &scripted{}}
	}
	for _, tc := range []struct {
		change func(*autoscale.Config)
		want   string
	}{
		{func(c *autoscale.Config) { c.Stream = "" }, "Config.Stream is required"},
		{func(c *autoscale.Config) { c.Metrics = nil }, "Config.Metrics is required"},
		{func(c *autoscale.Config) { c.TargetUtilization = 1.5 }, "TargetUtilization 1.5 must be in (0, 1]"},
		{func(c *autoscale.Config) { c.TargetUtilization, c.ScaleDownUtilization = 0.5, 0.6 }, "ScaleDownUtilization 0.6 must be positive and below TargetUtilization 0.5"},
		{func(c *autoscale.Config) { c.Interval = -time.Second }, "Interval -1s must not be negative"},
		{func(c *autoscale.Config) { c.UpWindow, c.QuietPeriod = time.Hour, time.Minute }, "UpWindow 1h0m0s must not be longer than QuietPeriod 1m0s"},
		{func(c *autoscale.Config) { c.MinShards, c.MaxShards = 5, 2 }, "MinShards 5 and MaxShards 2"},
		{func(c *autoscale.Config) { c.MaxShards = 20000 }, "MaxShards 20000 must satisfy"},
		{func(c *autoscale.Config) { c.Rules.CallsPer24h = -1 }, "Rules.CallsPer24h -1 must be at least 1"},
	} {
		cfg := ok()
		tc.change(&cfg)
		if _, err := autoscale.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v; want an error containing %q", err, tc.want)
		}
	}
}

// gatedLoad is a load safe for concurrent Steps: each Sample moves the
// clock on by a minute, and once gate is set, Sample holds its callers
// until gate of them have measured, so they all decide on measurements
// taken before any of them scaled.
type gatedLoad struct {
	mu      sync.Mutex // guards: now, arrived
	now     time.Time
	bytes   float64
	gate    int
	arrived int
	all     chan struct{} // closed when gate callers arrived
}

func (g *gatedLoad) Now() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now
}

func (g *gatedLoad) Sample(ctx context.Context, _ string) (autoscale.Sample, error) {
	g.mu.Lock()
	g.now = g.now.Add(time.Minute)
	x := autoscale.Sample{Time: g.now, Interval: time.Minute, IncomingBytes: g.bytes, IncomingRecords: g.bytes / 10000}
	gated := g.gate > 0
	if gated {
		if g.arrived++; g.arrived == g.gate {
			close(g.all)
		}
	}
	g.mu.Unlock()
	if !gated {
		return x, nil
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-g.all:
		return x, nil
	case <-t.C:
		return autoscale.Sample{}, errors.New("not every concurrent Step measured")
	case <-ctx.Done():
		return autoscale.Sample{}, ctx.Err()
	}
}

// TestScalerConcurrentStepsScaleOnce: Steps called at once, all measuring
// the same overload before any decides, make one UpdateShardCount call
// between them; the others hold, and one call is recorded.
func TestScalerConcurrentStepsScaleOnce(t *testing.T) {
	srv := servertest.Start(t, server.Options{DisableLimits: true})
	client := servertest.Client(t, srv)
	servertest.CreateStream(t, client, "s", 2)
	load := &gatedLoad{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), bytes: 2.1 * mib} // 105% of 2 shards
	s, err := autoscale.New(autoscale.Config{Stream: "s", Kinesis: client, Metrics: load, Now: load.Now,
		Interval: time.Minute, UpWindow: 3 * time.Minute, QuietPeriod: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if d, n := steps(t, s, 2); d.Action != autoscale.Hold || n != 2 {
		t.Fatalf("got %s after %d steps (%s); want the window still measuring", d.Action, n, d.Reason)
	}
	const callers = 8
	load.mu.Lock()
	load.gate, load.all = callers, make(chan struct{})
	load.mu.Unlock()
	decisions := make(chan autoscale.Decision, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			d, err := s.Step(bg)
			if err != nil {
				t.Error(err)
			}
			decisions <- d
		})
	}
	wg.Wait()
	close(decisions)
	scaled, held := 0, 0
	for d := range decisions {
		switch {
		case d.Err != nil:
			t.Errorf("a concurrent step's UpdateShardCount failed: %v (%s)", d.Err, d.Reason)
		case d.Action == autoscale.ScaleUp && d.Target == 3:
			scaled++
		case d.Action == autoscale.Hold:
			held++ // the call under way, or one made since it measured, holds it
		default:
			t.Errorf("got %s to %d (%s); want scale-up to 3 or a hold", d.Action, d.Target, d.Reason)
		}
	}
	if scaled != 1 || held != callers-1 || len(s.Calls()) != 1 {
		t.Fatalf("%d scale-ups, %d holds, %d calls recorded; want 1, %d, 1", scaled, held, len(s.Calls()), callers-1)
	}
	out, err := client.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(out.StreamDescriptionSummary.OpenShardCount); n != 3 {
		t.Fatalf("the stream has %d open shards; want 3", n)
	}
}
