// Package peers starts the npm-packaged peer implementations the tests and
// benchmarks compare ksp with (kinesalite, kinesis-mock, dynalite) as child
// processes on loopback ports, and runs node scripts against the pinned
// aws-kinesis-agg package and AWS JavaScript SDK v3 Kinesis client
// (@aws-sdk/client-kinesis: the server's SubscribeToShard test).
//
// The packages are pinned in npm/package.json and npm/package-lock.json and
// installed with `npm ci` (make test does it; Install does it when missing).
package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/ksp-project/ksp/internal/childproc"
	"github.com/ksp-project/ksp/internal/filelock"
	"github.com/ksp-project/ksp/internal/procattr"
)

// Kind names a peer.
type Kind string

const (
	Kinesalite  Kind = "kinesalite"
	KinesisMock Kind = "kinesis-mock"
	Dynalite    Kind = "dynalite"
)

// Options tune a peer's start.
type Options struct {
	// DataDir makes kinesalite keep its data on disk there (its --path).
	DataDir string
	// Stderr, when set, receives the peer's output (default: discarded).
	Stderr io.Writer
}

// Peer is a running peer process.
type Peer struct {
	Kind Kind
	URL  string // http://127.0.0.1:PORT
	proc *childproc.Process
}

// NPMDir is the folder holding package.json and node_modules. KSP_NPM_DIR
// overrides the location found from this source file.
func NPMDir() string {
	if d := os.Getenv("KSP_NPM_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "npm")
}

var installMu sync.Mutex

// Install runs `npm ci` in NPMDir when node_modules is missing or older
// than package-lock.json. A lock file
// keeps concurrent test binaries from installing at once.
func Install(ctx context.Context) error {
	installMu.Lock()
	defer installMu.Unlock()
	dir := NPMDir()
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("peers: node is not installed: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	defer lock.Close()
	if err := filelock.Lock(lock); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	defer filelock.Unlock(lock)
	// Installed, and not before package-lock.json last changed (a peer
	// added since).
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if want, werr := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil && (werr != nil || !installed.ModTime().Before(want.ModTime())) {
		return nil
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("peers: npm ci in %s: %w\n%s", dir, err, out)
	}
	return nil
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start launches a peer and waits until it answers.
func Start(ctx context.Context, kind Kind, opts Options) (*Peer, error) {
	if err := Install(ctx); err != nil {
		return nil, err
	}
	dir := NPMDir()
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p := strconv.Itoa(port)
	var cmd *exec.Cmd
	switch kind {
	case Kinesalite:
		// kinesalite's CLI listens on every interface: its module API takes
		// a host. The script reads its options from argv (path may be "").
		cmd = exec.Command("node", "-e", kinesaliteScript, p, opts.DataDir)
	case Dynalite:
		cmd = exec.Command("node", "node_modules/dynalite/cli.js", "--host", "127.0.0.1", "--port", p, "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	case KinesisMock:
		tls, err := FreePort()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command("node", "-e", loopbackOnly+"require('./node_modules/kinesis-local/main.js')")
		cmd.Env = append(os.Environ(),
			"KINESIS_MOCK_CERT_PATH="+filepath.Join(dir, "node_modules/kinesis-local/server.json"),
			"KINESIS_MOCK_PLAIN_PORT="+p, "KINESIS_MOCK_TLS_PORT="+strconv.Itoa(tls),
			"CREATE_STREAM_DURATION=0ms", "DELETE_STREAM_DURATION=0ms", "UPDATE_STREAM_DURATION=0ms",
			"LOG_LEVEL=ERROR")
	default:
		return nil, fmt.Errorf("peers: unknown peer %q", kind)
	}
	cmd.Dir = dir
	cmd.Stdout = opts.Stderr
	cmd.Stderr = opts.Stderr
	procattr.NewGroup(cmd) // Stop reaches node and whatever it starts
	procattr.KillWithParent(cmd)
	proc, err := childproc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("peers: start %s: %w", kind, err)
	}
	peer := &Peer{Kind: kind, URL: "http://127.0.0.1:" + p, proc: proc}
	if err := proc.WaitReady(ctx, 30*time.Second, peer.ready); err != nil {
		peer.Close()
		return nil, fmt.Errorf("peers: %s: %w", kind, err)
	}
	return peer, nil
}

// kinesaliteScript starts kinesalite on 127.0.0.1 through its module API;
// argv: port, data directory ("" keeps the data in memory).
const kinesaliteScript = `
const [port, path] = process.argv.slice(1);
const opts = {createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0};
if (path) opts.path = path;
require('./node_modules/kinesalite')(opts).listen(Number(port), '127.0.0.1');
`

// loopbackOnly makes every TCP server of the node process listen on
// 127.0.0.1. kinesis-mock has no host setting: its servers (plain and TLS)
// are built for 0.0.0.0 inside its compiled Scala.js, and listen with a port
// alone, or with an options object.
const loopbackOnly = `
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') {
    const cb = args.find((a) => typeof a === 'function');
    args = cb ? [{port: args[0]}, cb] : [{port: args[0]}];
  }
  if (args[0] && typeof args[0] === 'object' && args[0].path === undefined) {
    args[0] = {...args[0], host: '127.0.0.1'};
  }
  return listen.apply(this, args);
};
`

// ready reports whether the peer answers HTTP (kinesis-mock: its health check).
func (p *Peer) ready(ctx context.Context) bool {
	url := p.URL
	if p.Kind == KinesisMock {
		url += "/healthcheck"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return p.Kind != KinesisMock || resp.StatusCode == http.StatusOK
}

// RSS returns the peer's resident set size in bytes (Linux), or 0.
func (p *Peer) RSS() int64 { return childproc.RSS(p.proc.Pid()) }

// Close stops the peer and its children. It is safe to call more than once.
func (p *Peer) Close() error {
	p.proc.Stop(0)
	return nil
}

// ErrMissing reports that a peer cannot be run on this machine.
var ErrMissing = errors.New("peers: peer not available")
