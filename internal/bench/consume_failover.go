package bench

// The failover part of the consumer benchmark: two worker processes share a
// SQLite lease table and one is killed; and the worker those processes run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/internal/procattr"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/server/servertest"
)

// FailoverResult is the time a surviving worker took to hold every lease
// after the other was killed.
type FailoverResult struct {
	FailoverTime time.Duration `json:"failover_time_ns"`
	Renewal      time.Duration `json:"renewal_interval_ns"`
	Shards       int           `json:"shards"`
	// KilledLeases is how many leases the killed worker held.
	KilledLeases int `json:"killed_worker_leases"`
	// Took is from the SIGKILL until the lease table showed the survivor
	// owning every lease (polled every 10 ms).
	Took time.Duration `json:"took_ns"`
}

// waitLeases polls store every 10 ms until cond holds for the number of
// leases per owner and in all, for at most limit.
func waitLeases(ctx context.Context, store lease.Store, limit time.Duration, cond func(owners map[string]int, total int) bool) error {
	deadline := time.Now().Add(limit)
	for {
		ls, err := store.ListLeases(ctx)
		if err == nil {
			owners := map[string]int{}
			for _, l := range ls {
				owners[l.LeaseOwner]++
			}
			if cond(owners, len(ls)) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leases not as wanted after %s (last error: %v)", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

const failoverTable = "ksp-bench-consume"

func runFailover(ctx context.Context, cfg ConsumeConfig) (*FailoverResult, error) {
	srv, _, err := startConsumeServer(ctx, cfg.Shards)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "ksp-bench-consume-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "leases.db")
	store, err := sqlite.Open(ctx, db, failoverTable)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if _, err := store.CreateTableIfNotExists(ctx); err != nil {
		return nil, err
	}
	command := cfg.WorkerCommand
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the ksp executable: %w", err)
		}
		command = []string{exe, "bench", "consume", "worker"}
	}
	// Balancing steals one lease per take round (every half failover
	// time), so allow plenty of rounds.
	settle := 30*time.Second + time.Duration(cfg.Shards)*cfg.Failover
	ids := [2]string{"w0", "w1"}
	var workers [2]*childproc.Process
	for i, id := range ids {
		wc := ConsumeWorkerConfig{
			Endpoint: srv.URL(), Region: srv.Region(), Stream: streamName, LeaseDB: db, LeaseTable: failoverTable,
			WorkerID: id, Failover: cfg.Failover, PollInterval: cfg.PollInterval, MaxRuntime: 2*settle + time.Minute,
		}
		w, err := startWorker(command, wc.Args(), cfg.WorkerEnv, cfg.Progress)
		if err != nil {
			return nil, err
		}
		workers[i] = w
		defer w.Stop(cfg.Failover + 5*time.Second)
	}
	fmt.Fprintf(cfg.Progress, "consume: two worker processes (pids %d, %d) share a SQLite lease table; waiting until they split %d shards\n",
		workers[0].Pid(), workers[1].Pid(), cfg.Shards)
	half := cfg.Shards / 2
	err = waitLeases(ctx, store, settle, func(o map[string]int, total int) bool {
		return total == cfg.Shards && o[ids[0]] >= half && o[ids[1]] >= half && o[ids[0]]+o[ids[1]] == total
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for both workers to hold leases: %w", err)
	}
	res := &FailoverResult{FailoverTime: cfg.Failover, Renewal: cfg.Failover / 3, Shards: cfg.Shards}
	if ls, err := store.ListLeases(ctx); err == nil {
		for _, l := range ls {
			if l.LeaseOwner == ids[0] {
				res.KilledLeases++
			}
		}
	}
	killedAt := time.Now()
	if err := workers[0].Signal(syscall.SIGKILL); err != nil {
		return nil, fmt.Errorf("killing worker %s: %w", ids[0], err)
	}
	err = waitLeases(ctx, store, 10*cfg.Failover+10*time.Second, func(o map[string]int, total int) bool {
		return total == cfg.Shards && o[ids[1]] == total
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the survivor to hold every lease: %w", err)
	}
	res.Took = time.Since(killedAt)
	fmt.Fprintf(cfg.Progress, "consume: killed %s (%d leases); %s held all %d after %s\n", ids[0], res.KilledLeases, ids[1], cfg.Shards, ms(res.Took))
	return res, nil
}

// startWorker starts a failover worker child process.
func startWorker(command, args, env []string, stderr io.Writer) (*childproc.Process, error) {
	cmd := exec.Command(command[0], append(slices.Clone(command[1:]), args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.Discard
	cmd.Stderr = stderr
	// The worker dies with this process, whatever way it ends.
	procattr.KillWithParent(cmd)
	w, err := childproc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return w, nil
}

// ConsumeWorkerConfig is one failover worker of the consumer benchmark: a
// consumer on the server at Endpoint with its leases in a SQLite file.
type ConsumeWorkerConfig struct {
	Endpoint     string
	Region       string
	Stream       string
	LeaseDB      string
	LeaseTable   string
	WorkerID     string
	Failover     time.Duration
	PollInterval time.Duration
	// MaxRuntime ends the worker should nobody stop it.
	MaxRuntime time.Duration
}

// FlagSet is what ConsumeWorkerConfig.RegisterFlags needs: both
// *flag.FlagSet and *pflag.FlagSet have it.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// RegisterFlags defines the worker's flags on fs, those Args writes.
func (c *ConsumeWorkerConfig) RegisterFlags(fs FlagSet) {
	fs.StringVar(&c.Endpoint, "endpoint", "", "Kinesis endpoint URL")
	fs.StringVar(&c.Region, "region", "us-east-1", "region given to the SDK client")
	fs.StringVar(&c.Stream, "stream", "", "stream to consume")
	fs.StringVar(&c.LeaseDB, "lease-db", "", "SQLite file of the lease table")
	fs.StringVar(&c.LeaseTable, "lease-table", "", "lease table name")
	fs.StringVar(&c.WorkerID, "worker-id", "", "this worker's id")
	fs.DurationVar(&c.Failover, "failover", 2*time.Second, "failover time")
	fs.DurationVar(&c.PollInterval, "poll-interval", 200*time.Millisecond, "pause between GetRecords calls")
	fs.DurationVar(&c.MaxRuntime, "max-runtime", 5*time.Minute, "exit after this long")
}

// Args returns the flags that give c to a worker process.
func (c ConsumeWorkerConfig) Args() []string {
	return []string{
		"--endpoint=" + c.Endpoint, "--region=" + c.Region, "--stream=" + c.Stream,
		"--lease-db=" + c.LeaseDB, "--lease-table=" + c.LeaseTable, "--worker-id=" + c.WorkerID,
		"--failover=" + c.Failover.String(), "--poll-interval=" + c.PollInterval.String(),
		"--max-runtime=" + c.MaxRuntime.String(),
	}
}

// Validate reports a missing or bad setting.
func (c ConsumeWorkerConfig) Validate() error {
	switch {
	case c.Endpoint == "" || c.Stream == "" || c.LeaseDB == "" || c.LeaseTable == "" || c.WorkerID == "":
		return errors.New("--endpoint, --stream, --lease-db, --lease-table and --worker-id are required")
	case c.Failover < 30*time.Millisecond:
		return fmt.Errorf("failover time must be at least 30ms, not %s", c.Failover)
	case c.PollInterval < time.Millisecond:
		return fmt.Errorf("poll interval must be at least 1ms, not %s", c.PollInterval)
	case c.MaxRuntime <= 0:
		return fmt.Errorf("max runtime must be positive, not %s", c.MaxRuntime)
	}
	return nil
}

// RunConsumeWorker consumes until ctx ends or MaxRuntime passes, handling
// records by dropping them; errors are logged to logw. Not warnings: the
// leases the two workers steal from each other while they balance are
// logged as lost, which is expected here.
func RunConsumeWorker(ctx context.Context, cfg ConsumeWorkerConfig, logw io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRuntime)
	defer cancel()
	store, err := sqlite.Open(ctx, cfg.LeaseDB, cfg.LeaseTable)
	if err != nil {
		return err
	}
	defer store.Close()
	client := servertest.NewClient(cfg.Endpoint, cfg.Region, func(o *kinesis.Options) { o.HTTPClient = produceHTTPClient() })
	c, err := consumer.New(
		consumer.WithStream(cfg.Stream), consumer.WithKinesis(client), consumer.WithLeaseStore(store),
		consumer.WithWorkerID(cfg.WorkerID), consumer.WithInitialPosition(consumer.TrimHorizon()),
		consumer.WithFailoverTime(cfg.Failover), consumer.WithIdleTime(cfg.PollInterval),
		consumer.WithShutdownTimeout(cfg.Failover),
		consumer.WithLogger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelError}))),
		consumer.WithHandler(func(context.Context, []consumer.Record) error { return nil }),
	)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}
