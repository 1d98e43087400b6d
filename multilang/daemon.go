package multilang

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
)

// defaultGrace is how long a child gets to exit after its last message.
const defaultGrace = 5 * time.Second

// Config is what Run needs besides the properties: the clients, which the
// caller builds from the properties' region, endpoints and credentials.
type Config struct {
	Properties *Properties
	// Kinesis is the stream's client (a *kinesis.Client).
	Kinesis consumer.KinesisAPI
	// LeaseStore is the application's lease table (lease/dynamo for the
	// KCL's own table; lease/sqlite for several local processes).
	LeaseStore lease.Store
	// Logger receives the daemon's records and the children's stderr
	// (nil: discard).
	Logger *slog.Logger
	// Env is added to the environment the children inherit from the
	// daemon.
	Env []string
	// Options are added after those the properties give (tests shorten
	// intervals with them).
	Options []consumer.Option
}

// CheckExecutable reports, in one line, why argv's program cannot be run:
// not found, not a regular file, or not executable.
func CheckExecutable(argv []string) error {
	_, err := resolveExecutable(argv)
	return err
}

// resolveExecutable finds argv's program: on PATH, or, for a bare name not
// on PATH, in the working directory (the KCL samples name a script there,
// as in executableName = sample_kclpy_app.py).
func resolveExecutable(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("executableName is empty")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil && !strings.ContainsRune(argv[0], os.PathSeparator) {
		if p, err2 := exec.LookPath("." + string(os.PathSeparator) + argv[0]); err2 == nil {
			path, err = p, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("executableName %q: %v", argv[0], unwrapExec(err))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("executableName %q: %v", argv[0], err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("executableName %q: %s is not a regular file", argv[0], path)
	}
	return path, nil
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// Run is the MultiLangDaemon: it consumes the stream with package consumer
// and runs the executable once per leased shard, until ctx ends (then a
// graceful shutdown: each child gets shutdownRequested, so its checkpoint
// lets the next owner replay nothing) or a child speaks another protocol
// (ErrProtocol). The executable is checked before any lease is taken.
func Run(ctx context.Context, cfg Config) error {
	p := cfg.Properties
	if p == nil {
		return errors.New("multilang: no properties")
	}
	exe, err := resolveExecutable(p.Executable)
	if err != nil {
		return err
	}
	argv := append([]string{exe}, p.Executable[1:]...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	d := &daemon{props: p, argv: argv, env: cfg.Env, log: log, cancel: cancel, children: map[*child]struct{}{}}
	defer d.killAll()

	opts := []consumer.Option{
		consumer.WithStream(p.StreamName),
		consumer.WithKinesis(cfg.Kinesis),
		consumer.WithLeaseStore(cfg.LeaseStore),
		consumer.WithInitialPosition(p.InitialPosition),
		consumer.WithLogger(log),
		consumer.WithProcessor(func(shardID string) consumer.RecordProcessor {
			return &processor{d: d, shardID: shardID, log: log.With("stream", p.StreamName, "shard_id", shardID)}
		}),
	}
	if p.WorkerID != "" {
		opts = append(opts, consumer.WithWorkerID(p.WorkerID))
	}
	if p.MaxRecords > 0 {
		opts = append(opts, consumer.WithMaxRecords(p.MaxRecords))
	}
	if p.IdleTimeBetweenReads > 0 {
		opts = append(opts, consumer.WithIdleTime(p.IdleTimeBetweenReads))
	}
	if p.FailoverTime > 0 {
		opts = append(opts, consumer.WithFailoverTime(p.FailoverTime))
	}
	if p.ShardSyncInterval > 0 {
		opts = append(opts, consumer.WithShardSyncInterval(p.ShardSyncInterval))
	}
	if p.MaxLeasesForWorker > 0 {
		opts = append(opts, consumer.WithMaxLeases(p.MaxLeasesForWorker))
	}
	if p.MaxLeasesToStealAtOneTime > 0 {
		opts = append(opts, consumer.WithMaxLeasesToSteal(p.MaxLeasesToStealAtOneTime))
	}
	if p.FanOut {
		opts = append(opts, consumer.WithFanOut(p.ApplicationName))
	}
	if p.WorkerMetrics {
		opts = append(opts, consumer.WithWorkerMetrics(p.WorkerMetricsInterval))
	}
	c, err := consumer.New(append(opts, cfg.Options...)...)
	if err != nil {
		return err
	}
	log.Info("multilang daemon starting", "application", p.ApplicationName, "stream", p.StreamName,
		"executable", p.Executable, "language", p.ProcessingLanguage)
	err = c.Run(ctx)
	if cause := context.Cause(ctx); errors.Is(cause, ErrProtocol) {
		return cause
	}
	return err
}

// daemon is what a Run's processors share.
type daemon struct {
	props  *Properties
	argv   []string // the executable, resolved, and its arguments
	env    []string
	log    *slog.Logger
	cancel context.CancelCauseFunc

	mu       sync.Mutex // guards: children, handshook
	children map[*child]struct{}
	// handshook is set once a first child's initialize was answered (well
	// or not): only that answer can reveal another protocol.
	handshook bool
}

func (d *daemon) grace() time.Duration {
	if d.props.ShutdownGrace > 0 {
		return d.props.ShutdownGrace
	}
	return defaultGrace
}

func (d *daemon) startChild(log *slog.Logger) (*child, error) {
	c, err := startChild(d.argv, d.env, outputDrain, log)
	if err != nil {
		return nil, fmt.Errorf("multilang: starting %q: %w", d.props.Executable[0], err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.children[c] = struct{}{}
	return c, nil
}

// endChild closes c, killing it after grace, and forgets it.
func (d *daemon) endChild(c *child, grace time.Duration) {
	c.close(grace)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.children, c)
}

// firstHandshake reports whether this is the daemon's first answer to an
// initialize, and records that it happened.
func (d *daemon) firstHandshake() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	first := !d.handshook
	d.handshook = true
	return first
}

func (d *daemon) fatal(err error) { d.cancel(err) }

// killAll ends the children a processor did not (a shutdown that timed
// out).
func (d *daemon) killAll() {
	d.mu.Lock()
	left := make([]*child, 0, len(d.children))
	for c := range d.children {
		left = append(left, c)
	}
	clear(d.children)
	d.mu.Unlock()
	// At once: each close may wait out outputDrain.
	var wg sync.WaitGroup
	for _, c := range left {
		wg.Go(func() { c.close(0) })
	}
	wg.Wait()
}
