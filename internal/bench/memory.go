package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/internal/procattr"
)

// The memory benchmark checks that `ksp server` streams: it runs the server
// as a child process on a durable data dir, puts far more data than the
// memory target through it with PutRecords, reads all of it back with
// GetRecords (each record checked to come back exactly once), and reports
// the server process's peak resident set: sampled VmRSS and the kernel's own
// high-water mark (VmHWM). Records live in segment files and the page cache,
// not in the server's heap, so the peak should stay near the in-flight
// request and response buffers.

// GoalMemoryPeakRSS is the server's peak RSS target for the memory benchmark.
const GoalMemoryPeakRSS = 200 << 20

// MemoryConfig describes one run of the memory benchmark. Zero fields take
// the defaults named on each.
type MemoryConfig struct {
	// Binary is the ksp executable started as `ksp server` (default: this
	// process's own executable, i.e. the ksp running the benchmark).
	Binary string
	// DataDir is the server's --data-dir (default: a temporary directory,
	// removed afterwards). Any data in it is read back too and fails the check,
	// so give an empty one.
	DataDir string
	// Fsync is the server's --fsync policy (default always).
	Fsync string
	// Bytes is how much record data to put (default 2 GiB).
	Bytes int64
	// Size is each record's data size (default 100 KiB).
	Size int
	// Shards of the stream (default 4).
	Shards int
	// Clients is the number of concurrent putting clients (default 4).
	Clients int
	// ServerMemoryLimit, when set, is given to the server process as
	// GOMEMLIMIT (e.g. "150MiB"): a soft limit that makes its GC run sooner.
	ServerMemoryLimit string
	// Progress receives a line per phase (nil: none).
	Progress io.Writer
}

func (c *MemoryConfig) setDefaults() {
	setDefault(&c.Fsync, "always")
	setDefault(&c.Bytes, 2<<30)
	setDefault(&c.Size, 100<<10)
	setDefault(&c.Shards, 4)
	setDefault(&c.Clients, 4)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first setting that cannot run, after the defaults.
func (c MemoryConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Size < 8 || c.Size > 1<<20:
		return fmt.Errorf("size must be in 8..1048576 bytes, not %d", c.Size)
	case c.Bytes < int64(c.Size):
		return fmt.Errorf("bytes (%d) must be at least one record of %d bytes", c.Bytes, c.Size)
	case c.Shards < 1 || c.Shards > 500:
		return fmt.Errorf("shards must be in 1..500, not %d", c.Shards)
	case c.Clients < 1:
		return fmt.Errorf("clients must be at least 1, not %d", c.Clients)
	}
	switch c.Fsync {
	case "always", "interval", "never":
	default:
		return fmt.Errorf("fsync must be always, interval or never, not %q", c.Fsync)
	}
	return nil
}

// MemoryReport is the outcome of a memory benchmark run.
type MemoryReport struct {
	Records int    `json:"records"`
	Size    int    `json:"record_size"`
	Bytes   int64  `json:"bytes"`
	Fsync   string `json:"fsync"`
	// MemoryLimit is the server's GOMEMLIMIT ("" when none was set).
	MemoryLimit string `json:"server_gomemlimit,omitempty"`
	Put         Phase  `json:"put"`
	Drain       Phase  `json:"drain"`
	// PeakRSS is the largest VmRSS sampled every 50 ms; HighWaterRSS is the
	// kernel's VmHWM read just before the server stopped (the true peak).
	PeakRSS      int64 `json:"peak_rss_bytes"`
	HighWaterRSS int64 `json:"high_water_rss_bytes"`
	Goal         int64 `json:"goal_peak_rss_bytes"`
	Met          bool  `json:"met"`
}

// RunMemory runs the memory benchmark.
func RunMemory(ctx context.Context, cfg MemoryConfig) (*MemoryReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the ksp executable: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "ksp-bench-memory-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	env := os.Environ()
	if cfg.ServerMemoryLimit != "" {
		env = append(env, "GOMEMLIMIT="+cfg.ServerMemoryLimit)
	}
	child, url, err := startKSPChild(ctx, cfg.Binary, env, "server", "--addr", "127.0.0.1:0", "--data-dir", cfg.DataDir,
		"--fsync", cfg.Fsync, "--limits", "off", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	defer child.Stop(childGrace)

	scfg := ServerConfig{Shards: cfg.Shards, Clients: cfg.Clients, Size: cfg.Size, Batch: max(1, min(500, (5<<20)/(cfg.Size+64)))}
	scfg.setDefaults()
	records := int((cfg.Bytes + int64(cfg.Size) - 1) / int64(cfg.Size))
	l := newLoad(scfg, url, TransportHTTP1)
	defer l.close()
	if err := l.createStream(ctx); err != nil {
		return nil, err
	}
	rep := &MemoryReport{Size: cfg.Size, Fsync: cfg.Fsync, Goal: GoalMemoryPeakRSS, MemoryLimit: cfg.ServerMemoryLimit}
	mem := startSampler(50*time.Millisecond, func() int64 { return childproc.RSS(child.Pid()) })
	sampling := true
	defer func() {
		if sampling {
			mem.stop()
		}
	}()
	fmt.Fprintf(cfg.Progress, "memory: putting %d records of %d bytes (%s) into ksp server (pid %d, fsync %s, data dir %s)\n",
		records, cfg.Size, mib(int64(records)*int64(cfg.Size)), child.Pid(), cfg.Fsync, cfg.DataDir)
	if rep.Put, err = l.put(ctx, records, 0); err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	fmt.Fprintf(cfg.Progress, "memory: put %d records in %.1fs; server RSS now %s; reading them back\n",
		rep.Put.Records, rep.Put.Seconds, mib(childproc.RSS(child.Pid())))
	if rep.Drain, err = l.drain(ctx); err != nil {
		return nil, fmt.Errorf("drain: %w", err)
	}
	rep.Records = rep.Put.Records
	rep.Bytes = int64(rep.Records) * int64(cfg.Size)
	rep.HighWaterRSS = childproc.PeakRSS(child.Pid())
	rep.PeakRSS, sampling = mem.stop(), false
	rep.Met = max(rep.PeakRSS, rep.HighWaterRSS) < rep.Goal
	return rep, nil
}

// WriteTable prints the report for people.
func (r *MemoryReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	gib := float64(r.Bytes) / (1 << 30)
	limit := "no GOMEMLIMIT"
	if r.MemoryLimit != "" {
		limit = "GOMEMLIMIT=" + r.MemoryLimit
	}
	fmt.Fprintf(&b, "ksp bench memory: `ksp server` child process (%s), durable data dir, fsync %s, %d records of %d bytes (%.2f GiB)\n\n",
		limit, r.Fsync, r.Records, r.Size, gib)
	rows := [][]string{
		{"phase", "records", "seconds", "MiB/s", "failed calls"},
		{"put", comma(float64(r.Put.Records)), strconv.FormatFloat(r.Put.Seconds, 'f', 1, 64), comma(float64(r.Bytes) / (1 << 20) / r.Put.Seconds), strconv.Itoa(r.Put.FailedCall + r.Put.Retried)},
		{"get", comma(float64(r.Drain.Records)), strconv.FormatFloat(r.Drain.Seconds, 'f', 1, 64), comma(float64(r.Bytes) / (1 << 20) / r.Drain.Seconds), strconv.Itoa(r.Drain.FailedCall)},
	}
	writeColumns(&b, rows)
	verdict := "not met"
	if r.Met {
		verdict = "met"
	}
	fmt.Fprintf(&b, "\nserver peak RSS: %s sampled (VmRSS every 50 ms), %s high-water mark (VmHWM); goal < %s: %s\n",
		mib(r.PeakRSS), mib(r.HighWaterRSS), mib(r.Goal), verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

var childEndpoint = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// startKSPChild runs the ksp binary with args and waits (at most a minute)
// for the line naming its endpoint, which it returns.
func startKSPChild(ctx context.Context, binary string, env []string, args ...string) (*childproc.Process, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	procattr.KillWithParent(cmd)
	endpoint := childproc.MatchLine(childEndpoint)
	cmd.Stdout = endpoint
	p, err := childproc.Start(cmd)
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitReady(ctx, time.Minute, func(context.Context) bool { return endpoint.Match() != nil }); err != nil {
		p.Stop(childGrace)
		return nil, "", fmt.Errorf("ksp server printed no endpoint: %w", err)
	}
	return p, endpoint.Match()[1], nil
}

// childGrace is how long a ksp child may take to shut down after SIGTERM.
const childGrace = 10 * time.Second
