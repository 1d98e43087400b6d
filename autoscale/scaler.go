package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ksp-project/ksp/sdkhttp"
)

// Action is what a decision does.
type Action string

const (
	Hold      Action = "hold"
	ScaleUp   Action = "scale-up"
	ScaleDown Action = "scale-down"
)

// Decision is the outcome of one evaluation.
type Decision struct {
	Time   time.Time
	Stream string
	Action Action
	// Shards is the open shard count; Target what UpdateShardCount was
	// asked for (Shards on Hold).
	Shards, Target int
	// Wanted is what the load asked for before the rules and bounds.
	Wanted int
	// Utilization is the window's mean share of the write capacity (the
	// peak over the quiet period when scaling down); BytesPerSecond,
	// RecordsPerSecond and ThrottledPerSecond the window's means.
	Utilization                                          float64
	BytesPerSecond, RecordsPerSecond, ThrottledPerSecond float64
	// Reason says why, in words.
	Reason string
	DryRun bool
	// Err is UpdateShardCount's error, if it failed.
	Err error
}

// Scaler makes scaling decisions for one stream. Step measures and decides
// once; Run steps every Interval. It is safe for concurrent use.
type Scaler struct {
	cfg Config

	mu         sync.Mutex // guards: samples, calls, lastChange, changes, calling
	samples    []Sample   // since the last change, within the quiet period
	calls      []time.Time
	lastChange time.Time
	// changes counts UpdateShardCount calls reserved and ended: a Step
	// that measured before another's call may not act on what it measured.
	changes int
	calling bool // an UpdateShardCount call is reserved (in calls) and under way
}

// New validates cfg and returns a Scaler.
func New(cfg Config) (*Scaler, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Logger = cfg.Logger.With("stream", cfg.Stream)
	calls := slices.Clone(cfg.Calls)
	slices.SortFunc(calls, time.Time.Compare)
	return &Scaler{cfg: cfg, calls: calls}, nil
}

// Run decides every Interval until ctx ends, then returns nil. Failures to
// measure or to scale are logged and the next interval tries again.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// Run decides every Interval until ctx ends, then returns nil. The Interval
// runs from the end of one step to the start of the next (not a ticker): a
// slow step is never followed at once by another, so every sample spans at
// least an Interval rather than a sliver of time.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTimer(s.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := s.Step(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("autoscale: step failed; trying again next interval", "err", err)
		}
		t.Reset(s.cfg.Interval)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Calls returns the UpdateShardCount calls made (and given in Config.Calls)
// within the last 24 hours, oldest first.
func (s *Scaler) Calls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// streamState is what DescribeStreamSummary tells.
type streamState struct {
	shards      int
	active      bool
	status      string
	provisioned bool
}

// Step measures the load once, decides, and scales unless DryRun. The
// decision is logged and given to OnDecision; err is set when the
// measurement or the stream's description failed (no decision is made) —
// a failed UpdateShardCount is in the decision's Err.
//
// Concurrent Steps make at most one call at a time, and only on a decision
// measured after the last call ended: the decision and the call's record
// are one step under the lock (the call is reserved before it is made, not
// while it is made), so two Steps never both scale on the same measurement.
func (s *Scaler) Step(ctx context.Context) (Decision, error) {
	s.mu.Lock()
	measured := s.changes // the calls this Step's measurement follows
	s.mu.Unlock()
	sample, err := s.cfg.Metrics.Sample(ctx, s.cfg.Stream)
	if err != nil {
		return Decision{}, err
	}
	st, err := s.describe(ctx)
	if err != nil {
		return Decision{}, err
	}
	if sample.OpenShards == 0 {
		sample.OpenShards = st.shards // a source that cannot tell (CloudWatch)
	}
	now := s.cfg.Now()
	s.observe(sample)
	d := s.decide(now, st)
	if d.Action != Hold && d.Target > d.Shards {
		// The account's quota matters only when adding shards.
		open, limit, lerr := s.limits(ctx)
		if lerr != nil {
			return Decision{}, lerr
		}
		s.mu.Lock()
		target, refused := s.cfg.Rules.limit(proposal{current: d.Shards, target: d.Target, accountOpen: open, accountLimit: limit, calls: s.calls, now: now})
		s.mu.Unlock()
		if refused != "" || target != d.Target {
			d = withRules(d, target, refused)
		}
	}
	if d.Action != Hold && !s.cfg.DryRun {
		if why := s.reserve(measured, now); why != "" {
			d.Action, d.Target = Hold, d.Shards
			d.Reason += "; held: " + why
		} else {
			_, d.Err = s.cfg.Kinesis.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
				StreamName: aws.String(s.cfg.Stream), TargetShardCount: aws.Int32(int32(d.Target)), ScalingType: types.ScalingTypeUniformScaling,
			}, sdkhttp.FixKinesis)
			// A call that may have reached Kinesis counts against the
			// rolling 24 hours whatever its answer.
			s.called(now, d.Err == nil || !isClientError(d.Err))
		}
	}
	s.report(d)
	return d, nil
}

// reserve records an UpdateShardCount call at now before it is made, so
// the rules of every other Step count it, unless a call is under way or
// one was reserved since the calls the caller's measurement followed
// (measured): then it returns why the caller holds.
func (s *Scaler) reserve(measured int, now time.Time) (why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.calling:
		return "another UpdateShardCount call is under way"
	case s.changes != measured:
		return "the shard count changed since this step measured"
	}
	s.calling = true
	s.changes++
	s.calls = append(s.calls, now)
	return ""
}

// called ends the call reserve recorded: one that may have reached Kinesis
// stays recorded and restarts the measurement (the load measured before it
// says nothing about the new shard count); one refused before it changed
// anything is forgotten.
func (s *Scaler) called(now time.Time, reached bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calling = false
	s.changes++ // a Step that measured during the call measured the old count
	if !reached {
		s.calls = s.calls[:len(s.calls)-1] // the reserved call: none is added while one is under way
		return
	}
	for len(s.calls) > 0 && !s.calls[0].After(now.Add(-24*time.Hour)) {
		s.calls = s.calls[1:]
	}
	s.lastChange = now
	s.samples = nil
}

func (s *Scaler) describe(ctx context.Context) (streamState, error) {
	out, err := s.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.cfg.Stream)}, sdkhttp.FixKinesis)
	if err != nil {
		return streamState{}, fmt.Errorf("autoscale: describing stream %s: %w", s.cfg.Stream, err)
	}
	d := out.StreamDescriptionSummary
	st := streamState{shards: int(aws.ToInt32(d.OpenShardCount)), status: string(d.StreamStatus), active: d.StreamStatus == types.StreamStatusActive, provisioned: true}
	if d.StreamModeDetails != nil && d.StreamModeDetails.StreamMode == types.StreamModeOnDemand {
		st.provisioned = false
	}
	return st, nil
}

func (s *Scaler) limits(ctx context.Context) (open, limit int, err error) {
	out, err := s.cfg.Kinesis.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{}, sdkhttp.FixKinesis)
	if err != nil {
		return 0, 0, fmt.Errorf("autoscale: DescribeLimits: %w", err)
	}
	return int(aws.ToInt32(out.OpenShardCount)), int(aws.ToInt32(out.ShardLimit)), nil
}

// observe keeps a sample taken since the last change.
func (s *Scaler) observe(x Sample) {
	if x.Interval <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !x.Time.After(s.lastChange) || x.Time.Add(-x.Interval).Before(s.lastChange) {
		return // measured (partly) before the change: another shard count
	}
	s.samples = append(s.samples, x)
	keep := x.Time.Add(-s.cfg.QuietPeriod - s.cfg.Interval)
	for len(s.samples) > 0 && !s.samples[0].Time.After(keep) {
		s.samples = s.samples[1:]
	}
}

// window sums the samples that ended within d of the latest one; full
// reports that they cover d (give or take half an interval of jitter).
type window struct {
	covered                   time.Duration
	full                      bool
	bytes, records, throttled float64 // means per second
	meanUtil, peakUtil        float64
	throttledSamples, samples int
}

func (s *Scaler) window(d time.Duration) window {
	s.mu.Lock()
	defer s.mu.Unlock()
	var w window
	if len(s.samples) == 0 {
		return w
	}
	var weighted float64
	from := s.samples[len(s.samples)-1].Time.Add(-d)
	for _, x := range s.samples {
		if !x.Time.After(from) {
			continue
		}
		secs := x.Interval.Seconds()
		u := utilization(x)
		w.covered += x.Interval
		w.bytes += x.IncomingBytes * secs
		w.records += x.IncomingRecords * secs
		w.throttled += x.WriteThrottled * secs
		weighted += u * secs
		w.peakUtil = max(w.peakUtil, u)
		w.samples++
		if x.WriteThrottled > 0 {
			w.throttledSamples++
		}
	}
	w.full = w.covered+s.cfg.Interval/2 >= d
	if secs := w.covered.Seconds(); secs > 0 {
		w.bytes, w.records, w.throttled, w.meanUtil = w.bytes/secs, w.records/secs, w.throttled/secs, weighted/secs
	}
	return w
}

// utilization is the share of the write capacity a sample asked for: what
// was accepted plus what was throttled (estimated at the accepted records'
// mean size), of bytes and of records, whichever is higher.
func utilization(x Sample) float64 {
	if x.OpenShards < 1 {
		return 0
	}
	bytes, records := x.IncomingBytes, x.IncomingRecords+x.WriteThrottled
	if x.IncomingRecords > 0 {
		bytes += x.WriteThrottled * x.IncomingBytes / x.IncomingRecords
	}
	n := float64(x.OpenShards)
	return max(bytes/(n*ShardBytesPerSecond), records/(n*ShardRecordsPerSecond))
}

// decide applies the policy (up quickly, down slowly) and the bounds; the
// rules come after, in Step (the quota needs a call).
func (s *Scaler) decide(now time.Time, st streamState) Decision {
	c := &s.cfg
	d := Decision{Time: now, Stream: c.Stream, Action: Hold, Shards: st.shards, Target: st.shards, Wanted: st.shards, DryRun: c.DryRun}
	switch {
	case !st.provisioned:
		d.Reason = "the stream is ON_DEMAND: Kinesis scales it"
		return d
	case !st.active:
		d.Reason = "the stream is " + st.status + ", not ACTIVE"
		return d
	}
	up := s.window(c.UpWindow)
	d.Utilization, d.BytesPerSecond, d.RecordsPerSecond, d.ThrottledPerSecond = up.meanUtil, up.bytes, up.records, up.throttled
	quiet := s.window(c.QuietPeriod)
	target := st.shards
	switch {
	case !up.full:
		d.Reason = fmt.Sprintf("measuring: %v of the %v window since the last change", up.covered.Round(time.Millisecond), c.UpWindow)
	case up.meanUtil > c.TargetUtilization:
		target = shardsFor(st.shards, up.meanUtil, c.TargetUtilization)
		d.Reason = fmt.Sprintf("utilization %.0f%% above the target %.0f%%", 100*up.meanUtil, 100*c.TargetUtilization)
	case up.throttledSamples == up.samples:
		target = st.shards + 1
		d.Reason = fmt.Sprintf("writes throttled throughout the window (%.1f records/s) at utilization %.0f%%", up.throttled, 100*up.meanUtil)
	case !quiet.full:
		d.Reason = fmt.Sprintf("utilization %.0f%% within the target; %v of the %v quiet period measured", 100*up.meanUtil, quiet.covered.Round(time.Millisecond), c.QuietPeriod)
	case quiet.peakUtil < c.ScaleDownUtilization && quiet.throttledSamples == 0:
		target = max(1, shardsFor(st.shards, quiet.peakUtil, c.TargetUtilization))
		d.Utilization = quiet.peakUtil
		d.Reason = fmt.Sprintf("utilization peaked at %.0f%% over the quiet period, below %.0f%%", 100*quiet.peakUtil, 100*c.ScaleDownUtilization)
	default:
		d.Reason = fmt.Sprintf("utilization %.0f%% within the target", 100*up.meanUtil)
	}
	d.Wanted = target
	target = min(max(target, c.MinShards), c.MaxShards)
	if target == st.shards {
		if d.Wanted != st.shards {
			d.Reason += fmt.Sprintf("; %d shards is the bound (MinShards %d, MaxShards %d)", st.shards, c.MinShards, c.MaxShards)
		}
		return d
	}
	// The rules that need no call to check; the account quota is Step's.
	s.mu.Lock()
	t, refused := c.Rules.limit(proposal{current: st.shards, target: target, calls: s.calls, now: now})
	s.mu.Unlock()
	return withRules(d, t, refused)
}

// shardsFor is the shard count that brings utilization u of n shards to
// the target (rounded up; a hair of float error does not add a shard).
func shardsFor(n int, u, target float64) int {
	return int(math.Ceil(float64(n)*u/target - 1e-9))
}

// withRules sets the decision's target to what the rules allow.
func withRules(d Decision, target int, refused string) Decision {
	switch {
	case refused != "":
		d.Action, d.Target = Hold, d.Shards
		d.Reason += "; held by the rule " + refused
	case target == d.Shards:
		d.Action, d.Target = Hold, d.Shards
		d.Reason += fmt.Sprintf("; the rules allow no change from %d", d.Shards)
	default:
		if target != d.Wanted {
			d.Reason += fmt.Sprintf("; %d allowed by the rules (wanted %d)", target, d.Wanted)
		}
		d.Target, d.Action = target, ScaleUp
		if target < d.Shards {
			d.Action = ScaleDown
		}
	}
	return d
}

func (s *Scaler) report(d Decision) {
	level := slog.LevelInfo
	if d.Err != nil {
		level = slog.LevelWarn
	}
	s.cfg.Logger.Log(context.Background(), level, "autoscale decision", "action", string(d.Action), "shards", d.Shards, "target", d.Target,
		"utilization", fmt.Sprintf("%.3f", d.Utilization), "bytes_per_s", int64(d.BytesPerSecond), "records_per_s", int64(d.RecordsPerSecond),
		"throttled_per_s", fmt.Sprintf("%.1f", d.ThrottledPerSecond), "dry_run", d.DryRun, "reason", d.Reason, "err", d.Err)
	if s.cfg.OnDecision != nil {
		s.cfg.OnDecision(d)
	}
}

// isClientError reports a refusal that never changed the stream
// (validation, a stream that is busy or gone). LimitExceededException is
// not one: it counts as a call, so the scaler backs off.
func isClientError(err error) bool {
	var (
		inv  *types.InvalidArgumentException
		busy *types.ResourceInUseException
		gone *types.ResourceNotFoundException
	)
	return errors.As(err, &inv) || errors.As(err, &busy) || errors.As(err, &gone)
}
