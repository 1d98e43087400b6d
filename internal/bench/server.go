// Package bench holds ksp's benchmarks: programs that measure ksp and its
// peers (kinesalite, kinesis-mock) under the same load in one run and print
// the numbers side by side. They are run by `ksp bench` and `make bench`.
//
// The server benchmark puts fixed-size records with PutRecords from several
// concurrent aws-sdk-go-v2 clients, then drains every shard with GetRecords
// from TRIM_HORIZON. Every record carries its id, and the drain checks that
// each record put was read back exactly once: a benchmark run that loses or
// duplicates records fails instead of printing a rate.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server"
)

// Target names accepted in ServerConfig.Targets.
const (
	TargetKSP         = "ksp"
	TargetKinesalite  = string(peers.Kinesalite)
	TargetKinesisMock = string(peers.KinesisMock)
	// TargetKSPProcess is `ksp server` (in memory, limits off) as a child
	// process, and TargetNullProcess the null target as one: the clients
	// then share the CPUs with the server but not its Go runtime, and the
	// server's own CPU time is measured.
	TargetKSPProcess  = "ksp-process"
	TargetNullProcess = "null-process"
)

// Transports of ServerConfig.Transports.
const (
	TransportHTTP1 = "http1"
	TransportH2C   = "h2c"
)

// allTargets are the targets RunServer knows, in the default order.
var allTargets = []string{TargetNull, TargetKSP, TargetNullProcess, TargetKSPProcess, TargetKSPAlways, TargetKSPInterval,
	TargetKinesalite, TargetKinesaliteDisk, TargetKinesisMock}

// DefaultTargets are the targets a run measures by default: all of them.
func DefaultTargets() []string { return append([]string(nil), allTargets...) }

// multiTransport reports whether a target is measured over every transport
// of the run (ksp and the null target); the others over HTTP/1.1 only.
func multiTransport(target string) bool {
	switch target {
	case TargetKSP, TargetNull, TargetKSPProcess, TargetNullProcess:
		return true
	}
	return false
}

// ceilingOf names the null target a target's rates are compared with: the
// one in the same place (this process or a child).
func ceilingOf(target string) string {
	switch target {
	case TargetKSP, TargetKSPAlways, TargetKSPInterval:
		return TargetNull
	case TargetKSPProcess:
		return TargetNullProcess
	}
	return ""
}

// Goals of the server benchmark: ksp against kinesalite on the same machine.
const (
	GoalPutRatio   = 15.0
	GoalDrainRatio = 20.0
)

// ServerConfig describes one run of the server benchmark. Zero fields take
// the defaults named on each.
type ServerConfig struct {
	// Targets are the servers to measure, in order (default
	// DefaultTargets). ksp runs embedded in this process with limits off and
	// the in-memory store; ksp-always and ksp-interval likewise on the disk
	// store with that fsync policy; null is the client's ceiling (a server
	// that does no work, see TargetNull); ksp-process and null-process are
	// the same as child processes; the peers run as child processes,
	// kinesalite-disk with --path.
	Targets []string
	// Transports are the HTTP versions the clients of ksp and the null
	// targets use, each measured in turn: http1 and h2c (default http1).
	// The durable targets and the peers are measured over HTTP/1.1 only.
	Transports []string
	// Binary is the ksp executable the -process targets run (default: this
	// program, os.Executable).
	Binary string
	// Records is how many records are put into ksp (default 200000).
	Records int
	// PeerRecords caps the records put into each peer (default 20000).
	PeerRecords int
	// PeerTime bounds a peer's put phase (default 10s): clients start no new
	// PutRecords call after it, so slow peers are measured over a duration
	// rather than a count. Batches in flight complete and are counted.
	PeerTime time.Duration
	// Shards of the stream created on each target (default 4).
	Shards int
	// Clients is the number of concurrent putting clients, each with its own
	// aws-sdk-go-v2 client and connection (default 8).
	Clients int
	// Batch is the number of records per PutRecords call (default 500).
	Batch int
	// Size is the data size of each record in bytes, at least 8 (default 100).
	Size int
	// Rounds is how many times each target runs (default 1), interleaved
	// (ksp, kinesalite, kinesis-mock, ksp, ...), each time freshly started. The
	// best put and the best drain rate of each target are reported: other work
	// on a shared machine only ever slows a round down.
	Rounds int
	// Region given to the SDK clients (default us-east-1).
	Region string
	// Progress receives a line per phase as the run goes (nil: none).
	Progress io.Writer
}

func (c *ServerConfig) setDefaults() {
	if len(c.Targets) == 0 {
		c.Targets = DefaultTargets()
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{TransportHTTP1}
	}
	setDefault(&c.Records, 200000)
	setDefault(&c.PeerRecords, 20000)
	setDefault(&c.PeerTime, 10*time.Second)
	setDefault(&c.Shards, 4)
	setDefault(&c.Clients, 8)
	setDefault(&c.Batch, 500)
	setDefault(&c.Size, 100)
	setDefault(&c.Rounds, 1)
	setDefault(&c.Region, "us-east-1")
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first setting that cannot run, after applying the
// defaults.
func (c ServerConfig) Validate() error {
	c.setDefaults()
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if !slices.Contains(allTargets, t) {
			return fmt.Errorf("unknown target %q: want %s", t, strings.Join(allTargets, ", "))
		}
		if seen[t] {
			return fmt.Errorf("target %q given twice", t)
		}
		seen[t] = true
	}
	for _, tr := range c.Transports {
		if tr != TransportHTTP1 && tr != TransportH2C {
			return fmt.Errorf("unknown transport %q: want %s or %s", tr, TransportHTTP1, TransportH2C)
		}
		if seen["transport "+tr] {
			return fmt.Errorf("transport %q given twice", tr)
		}
		seen["transport "+tr] = true
	}
	switch {
	case c.Records < 1:
		return fmt.Errorf("records must be at least 1, not %d", c.Records)
	case c.PeerRecords < 1:
		return fmt.Errorf("peer records must be at least 1, not %d", c.PeerRecords)
	case c.PeerTime < 0:
		return fmt.Errorf("peer time must not be negative, not %s", c.PeerTime)
	case c.Rounds < 1:
		return fmt.Errorf("rounds must be at least 1, not %d", c.Rounds)
	case c.Shards < 1 || c.Shards > 500:
		return fmt.Errorf("shards must be in 1..500, not %d", c.Shards)
	case c.Clients < 1:
		return fmt.Errorf("clients must be at least 1, not %d", c.Clients)
	case c.Batch < 1 || c.Batch > 500:
		return fmt.Errorf("batch must be in 1..500 (the PutRecords limit), not %d", c.Batch)
	case c.Size < 8 || c.Size > 1<<20:
		return fmt.Errorf("size must be in 8..1048576 bytes (8 hold the record id), not %d", c.Size)
	case c.Batch*(c.Size+16) > 5<<20:
		return fmt.Errorf("batch %d of %d-byte records exceeds the 5 MiB PutRecords request limit", c.Batch, c.Size)
	}
	return nil
}

// ServerReport is the outcome of a server benchmark run.
type ServerReport struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	// LoadAvg is the 1-minute load average when the run started (Linux; 0
	// when unknown): other work on the machine skews every target's numbers.
	LoadAvg float64        `json:"load_average"`
	Shards  int            `json:"shards"`
	Clients int            `json:"clients"`
	Rounds  int            `json:"rounds"`
	Batch   int            `json:"batch"`
	Size    int            `json:"record_size"`
	Results []TargetResult `json:"results"`
	Goals   []Goal         `json:"goals,omitempty"` // ksp vs kinesalite, durable ksp vs kinesalite-disk, when both ran
}

// TargetResult is what one target measured over one transport.
type TargetResult struct {
	// Target is the target's name, followed by "/h2c" when its clients
	// used h2c.
	Target    string `json:"target"`
	Transport string `json:"transport"`
	Rounds    int    `json:"rounds"`
	Records   int    `json:"records"` // put and read back exactly once, in the round of the best put
	Put       Phase  `json:"put"`     // the best round's
	Drain     Phase  `json:"drain"`   // the best round's
	// PutRatio and DrainRatio compare the rates with kinesalite's (0 when
	// kinesalite did not run).
	PutRatio   float64 `json:"put_ratio_vs_kinesalite,omitempty"`
	DrainRatio float64 `json:"drain_ratio_vs_kinesalite,omitempty"`
	// DiskPutRatio and DiskDrainRatio compare the rates with kinesalite
	// keeping its data on disk (0 when kinesalite-disk did not run).
	DiskPutRatio   float64 `json:"put_ratio_vs_kinesalite_disk,omitempty"`
	DiskDrainRatio float64 `json:"drain_ratio_vs_kinesalite_disk,omitempty"`
	// PutCeiling and DrainCeiling are the rates as a fraction of the null
	// target's in the same place over the same transport (0 when it did
	// not run).
	PutCeiling   float64 `json:"put_fraction_of_ceiling,omitempty"`
	DrainCeiling float64 `json:"drain_fraction_of_ceiling,omitempty"`
	Memory       Memory  `json:"memory"` // the largest of all rounds
}

// merge keeps the best phases and the largest memory of two rounds.
func (r *TargetResult) merge(o *TargetResult) {
	r.Rounds += o.Rounds
	if o.Put.PerSecond > r.Put.PerSecond {
		r.Put, r.Records = o.Put, o.Records
	}
	if o.Drain.PerSecond > r.Drain.PerSecond {
		r.Drain = o.Drain
	}
	r.Memory.PeakRSS = max(r.Memory.PeakRSS, o.Memory.PeakRSS)
	r.Memory.Heap = max(r.Memory.Heap, o.Memory.Heap)
}

// Phase is one timed phase of a target's run.
type Phase struct {
	Records    int     `json:"records"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"records_per_second"`
	Calls      int     `json:"calls"`                 // successful API calls
	FailedCall int     `json:"failed_calls"`          // whole calls that failed and were retried
	Retried    int     `json:"retried_entries"`       // PutRecords entries that failed and were re-put
	EmptyReads int     `json:"empty_reads,omitempty"` // GetRecords calls that returned nothing before the end
	// ServerCPU is the CPU time the server process used in the phase, per
	// record, in microseconds (child-process targets only: in this process
	// the clients' CPU cannot be told apart).
	ServerCPU float64 `json:"server_cpu_us_per_record,omitempty"`
}

// Memory is a target's memory use, sampled during the put phase.
type Memory struct {
	// PeakRSS is the peak resident set of a peer process; for ksp, the peak
	// growth of this process's RSS since before the server started (it includes
	// the benchmark clients, which share the process).
	PeakRSS int64 `json:"peak_rss_bytes"`
	// Heap is, for ksp only, the growth of the live Go heap (after a GC) from
	// before the server started to the end of the put phase: the records held
	// by the in-memory store plus the server's indexes.
	Heap int64 `json:"live_heap_bytes,omitempty"`
	// InProcess is true when the target shares this process (ksp).
	InProcess bool `json:"in_process,omitempty"`
}

// Goal is one of the benchmark's targets for ksp and whether it was met.
type Goal struct {
	Name  string  `json:"name"` // "put" or "drain"
	Want  float64 `json:"want_ratio"`
	Got   float64 `json:"got_ratio"`
	Met   bool    `json:"met"`
	Notes string  `json:"notes,omitempty"`
}

// PeerError reports that a peer could not be started (node or the npm
// packages missing, for example).
type PeerError struct {
	Peer string
	Err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("starting %s: %v", e.Peer, e.Err) }
func (e *PeerError) Unwrap() error { return e.Err }

// RunServer runs the server benchmark against each target in turn and
// returns the measurements. It fails when a target cannot be started or does
// not give back exactly the records put into it.
func RunServer(ctx context.Context, cfg ServerConfig) (*ServerReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	rep := &ServerReport{
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		LoadAvg: loadAvg(), Shards: cfg.Shards, Clients: cfg.Clients, Rounds: cfg.Rounds, Batch: cfg.Batch, Size: cfg.Size,
	}
	type run struct{ target, transport string }
	var runs []run
	for _, name := range cfg.Targets {
		if !multiTransport(name) {
			runs = append(runs, run{name, TransportHTTP1})
			continue
		}
		for _, tr := range cfg.Transports {
			runs = append(runs, run{name, tr})
		}
	}
	rep.Results = make([]TargetResult, len(runs))
	for round := range cfg.Rounds {
		for i, r := range runs {
			if cfg.Rounds > 1 && i == 0 {
				fmt.Fprintf(cfg.Progress, "round %d of %d\n", round+1, cfg.Rounds)
			}
			res, err := runTarget(ctx, cfg, r.target, r.transport)
			if err != nil {
				return nil, err
			}
			if round == 0 {
				rep.Results[i] = *res
			} else {
				rep.Results[i].merge(res)
			}
		}
	}
	rep.compare()
	rep.compareDurable()
	rep.compareCeiling()
	return rep, nil
}

// label names a target's result: the target, with "/h2c" when measured
// over h2c.
func label(target, transport string) string {
	if transport == TransportH2C {
		return target + "/" + TransportH2C
	}
	return target
}

// compareCeiling fills each target's rates as fractions of its null
// target's over the same transport.
func (r *ServerReport) compareCeiling() {
	for i := range r.Results {
		res := &r.Results[i]
		base, _, _ := strings.Cut(res.Target, "/")
		ceil := ceilingOf(base)
		if ceil == "" {
			continue
		}
		null := r.Result(label(ceil, res.Transport))
		if null == nil || null.Put.PerSecond == 0 || null.Drain.PerSecond == 0 {
			continue
		}
		res.PutCeiling = res.Put.PerSecond / null.Put.PerSecond
		res.DrainCeiling = res.Drain.PerSecond / null.Drain.PerSecond
	}
}

// Result returns the result of target, or nil when it did not run.
func (r *ServerReport) Result(target string) *TargetResult {
	for i := range r.Results {
		if r.Results[i].Target == target {
			return &r.Results[i]
		}
	}
	return nil
}

// compare fills the ratios against kinesalite and the goals.
func (r *ServerReport) compare() {
	base := r.Result(TargetKinesalite)
	if base == nil || base.Put.PerSecond == 0 || base.Drain.PerSecond == 0 {
		return
	}
	for i := range r.Results {
		res := &r.Results[i]
		res.PutRatio = res.Put.PerSecond / base.Put.PerSecond
		res.DrainRatio = res.Drain.PerSecond / base.Drain.PerSecond
	}
	if k := r.Result(TargetKSP); k != nil {
		r.Goals = []Goal{
			{Name: "put", Want: GoalPutRatio, Got: k.PutRatio, Met: k.PutRatio >= GoalPutRatio},
			{Name: "drain", Want: GoalDrainRatio, Got: k.DrainRatio, Met: k.DrainRatio >= GoalDrainRatio},
		}
	}
}

// endpoint is a started target.
type endpoint struct {
	url     string
	records int
	budget  time.Duration        // 0: put all records
	rss     func() int64         // current RSS attributed to the target
	cpu     func() time.Duration // CPU time of the server process; nil in this process
	close   func()
	null    bool // the null target: records are counted, not told apart
}

func runTarget(ctx context.Context, cfg ServerConfig, name, transport string) (*TargetResult, error) {
	res := &TargetResult{Target: label(name, transport), Transport: transport, Rounds: 1}
	var ep endpoint
	var heapBase uint64
	if name == TargetNull {
		heapBase = liveHeap()
		rssBase := childproc.RSS(os.Getpid())
		n, err := startNullServer(cfg.Size)
		if err != nil {
			return nil, fmt.Errorf("null: %w", err)
		}
		ep = endpoint{
			url: n.URL(), records: cfg.Records, null: true,
			rss:   func() int64 { return max(0, childproc.RSS(os.Getpid())-rssBase) },
			close: n.Close,
		}
		res.Memory.InProcess = true
	} else if name == TargetKSPProcess || name == TargetNullProcess {
		bin := cfg.Binary
		if bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("%s: finding the ksp binary: %w", name, err)
			}
			bin = exe
		}
		args := []string{"server", "--addr", "127.0.0.1:0", "--in-memory", "--limits", "off", "--log-level", "warn"}
		if name == TargetNullProcess {
			args = []string{"bench", "null-server", "--size", strconv.Itoa(cfg.Size)}
		}
		p, url, err := startKSPChild(ctx, bin, os.Environ(), args...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pid := p.Pid()
		ep = endpoint{
			url: url, records: cfg.Records, null: name == TargetNullProcess,
			rss:   func() int64 { return childproc.RSS(pid) },
			cpu:   func() time.Duration { return childproc.CPUTime(pid) },
			close: func() { p.Stop(childGrace) },
		}
	} else if name == TargetKSP {
		heapBase = liveHeap()
		rssBase := childproc.RSS(os.Getpid())
		srv, err := server.New(server.Options{DisableLimits: true})
		if err != nil {
			return nil, fmt.Errorf("ksp: %w", err)
		}
		if err := srv.Start(); err != nil {
			srv.Close()
			return nil, fmt.Errorf("ksp: %w", err)
		}
		ep = endpoint{
			url: srv.URL(), records: cfg.Records,
			rss:   func() int64 { return max(0, childproc.RSS(os.Getpid())-rssBase) },
			close: func() { srv.Close() },
		}
		res.Memory.InProcess = true
	} else if isDurableKSP(name) {
		heapBase = liveHeap()
		rssBase := childproc.RSS(os.Getpid())
		srv, closeSrv, err := startDurableKSP(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		ep = endpoint{
			url: srv.URL(), records: cfg.Records,
			// Growth only: memory freed by an earlier target can make it negative.
			rss:   func() int64 { return max(0, childproc.RSS(os.Getpid())-rssBase) },
			close: closeSrv,
		}
		res.Memory.InProcess = true
	} else if name == TargetKinesaliteDisk {
		p, closePeer, err := startKinesaliteDisk(ctx)
		if err != nil {
			return nil, err
		}
		ep = endpoint{url: p.URL, records: cfg.PeerRecords, budget: cfg.PeerTime, rss: p.RSS, close: closePeer}
	} else {
		p, err := peers.Start(ctx, peers.Kind(name), peers.Options{})
		if err != nil {
			return nil, &PeerError{Peer: name, Err: err}
		}
		ep = endpoint{url: p.URL, records: cfg.PeerRecords, budget: cfg.PeerTime, rss: p.RSS, close: func() { p.Close() }}
	}
	defer ep.close()

	l := newLoad(cfg, ep.url, transport)
	l.countOnly = ep.null
	defer l.close()
	if err := l.warmUp(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := l.createStream(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(cfg.Progress, "%s: putting up to %d records of %d bytes (%d clients, batches of %d, %d shards)\n",
		name, ep.records, cfg.Size, cfg.Clients, cfg.Batch, cfg.Shards)
	mem := startSampler(100*time.Millisecond, ep.rss)
	cpu0 := serverCPU(ep)
	put, err := l.put(ctx, ep.records, ep.budget)
	put.ServerCPU = perRecordMicros(serverCPU(ep)-cpu0, put.Records)
	res.Memory.PeakRSS = mem.stop()
	if err != nil {
		return nil, fmt.Errorf("%s: put: %w", name, err)
	}
	if res.Memory.InProcess {
		res.Memory.Heap = int64(liveHeap()) - int64(heapBase)
	}
	res.Put = put
	res.Records = put.Records
	fmt.Fprintf(cfg.Progress, "%s: put %d records in %.2fs (%s records/s); draining\n", name, put.Records, put.Seconds, comma(put.PerSecond))
	cpu0 = serverCPU(ep)
	drain, err := l.drain(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: drain: %w", name, err)
	}
	drain.ServerCPU = perRecordMicros(serverCPU(ep)-cpu0, drain.Records)
	res.Drain = drain
	fmt.Fprintf(cfg.Progress, "%s: read back %d records in %.2fs (%s records/s; %d GetRecords calls, %d empty, %d failed)\n",
		name, drain.Records, drain.Seconds, comma(drain.PerSecond), drain.Calls, drain.EmptyReads, drain.FailedCall)
	return res, nil
}

func serverCPU(ep endpoint) time.Duration {
	if ep.cpu == nil {
		return 0
	}
	return ep.cpu()
}

func perRecordMicros(d time.Duration, records int) float64 {
	if d <= 0 || records == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(records)
}

// liveHeap collects garbage and returns the bytes of live heap objects.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// sampler records the peak of a value polled in the background.
type sampler struct {
	fn   func() int64
	peak int64
	quit chan struct{}
	done chan struct{}
}

func startSampler(every time.Duration, fn func() int64) *sampler {
	s := &sampler{fn: fn, peak: fn(), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.peak = max(s.peak, s.fn())
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

// stop takes a last sample and returns the peak.
func (s *sampler) stop() int64 {
	close(s.quit)
	<-s.done
	return max(s.peak, s.fn())
}

// loadAvg reads the 1-minute load average from /proc/loadavg; 0 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}
