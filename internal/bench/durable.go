package bench

import (
	"context"
	"fmt"
	"os"

	"github.com/ksp-project/ksp/internal/peers"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/store"
)

// Durable targets: ksp on its disk store and kinesalite keeping its data on
// disk (--path), each in a fresh temporary directory removed afterwards.
const (
	TargetKSPAlways      = "ksp-always"   // embedded, disk store, fsync before every acknowledgement
	TargetKSPInterval    = "ksp-interval" // embedded, disk store, fsync every 50 ms
	TargetKinesaliteDisk = "kinesalite-disk"
)

// Goals of the durable targets against kinesalite on disk (put rates).
const (
	GoalAlwaysPutRatio   = 8.0
	GoalIntervalPutRatio = 15.0
)

// isDurableKSP reports whether target is ksp on its disk store.
func isDurableKSP(target string) bool {
	return target == TargetKSPAlways || target == TargetKSPInterval
}

// startDurableKSP starts an embedded ksp on a disk store in a temporary dir.
func startDurableKSP(target string) (*server.Server, func(), error) {
	policy := store.FsyncAlways
	if target == TargetKSPInterval {
		policy = store.FsyncInterval
	}
	dir, err := os.MkdirTemp("", "ksp-bench-"+target+"-")
	if err != nil {
		return nil, nil, err
	}
	disk, err := store.OpenDisk(dir, store.DiskOptions{Fsync: policy})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	srv, err := server.New(server.Options{DisableLimits: true, Store: disk})
	if err != nil {
		disk.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv, func() { srv.Close(); os.RemoveAll(dir) }, nil
}

// startKinesaliteDisk starts kinesalite with --path in a temporary dir.
func startKinesaliteDisk(ctx context.Context) (*peers.Peer, func(), error) {
	dir, err := os.MkdirTemp("", "ksp-bench-kinesalite-")
	if err != nil {
		return nil, nil, err
	}
	p, err := peers.Start(ctx, peers.Kinesalite, peers.Options{DataDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, &PeerError{Peer: TargetKinesaliteDisk, Err: err}
	}
	return p, func() { p.Close(); os.RemoveAll(dir) }, nil
}

// compareDurable fills the ratios against kinesalite on disk and the
// durable goals.
func (r *ServerReport) compareDurable() {
	base := r.Result(TargetKinesaliteDisk)
	if base == nil || base.Put.PerSecond == 0 || base.Drain.PerSecond == 0 {
		return
	}
	for i := range r.Results {
		res := &r.Results[i]
		res.DiskPutRatio = res.Put.PerSecond / base.Put.PerSecond
		res.DiskDrainRatio = res.Drain.PerSecond / base.Drain.PerSecond
	}
	for _, g := range []struct {
		target string
		want   float64
	}{{TargetKSPAlways, GoalAlwaysPutRatio}, {TargetKSPInterval, GoalIntervalPutRatio}} {
		if k := r.Result(g.target); k != nil {
			r.Goals = append(r.Goals, Goal{
				Name: g.target + " put vs " + TargetKinesaliteDisk, Want: g.want, Got: k.DiskPutRatio, Met: k.DiskPutRatio >= g.want,
				Notes: fmt.Sprintf("drain %s", ratio(k.DiskDrainRatio)),
			})
		}
	}
}
