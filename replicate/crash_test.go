package replicate_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/lease/sqlite"
	"github.com/ksp-project/ksp/producer"
	"github.com/ksp-project/ksp/replicate"
	"github.com/ksp-project/ksp/server"
	"github.com/ksp-project/ksp/server/servertest"
)

const replicateChildEnv = "KSP_REPLICATE_CHILD" // "source url|destination url|lease db|worker|log file"

// TestReplicateChild is a replicator process of TestReplicateKill9; it does
// nothing when run on its own. It logs "put SHARD SEQ/SUB DATA" before
// forwarding each record, "cp SHARD SEQ/SUB" after each checkpoint and
// "lost SHARD" when a lease is lost, so the parent knows what was in flight
// when it killed the process or when the process lost a lease.
func TestReplicateChild(t *testing.T) {
	env := os.Getenv(replicateChildEnv)
	if env == "" {
		t.Skip("child process of TestReplicateKill9")
	}
	f := strings.Split(env, "|")
	src, dst, db, worker, out := f[0], f[1], f[2], f[3], f[4]
	ctx, cancel := signal.NotifyContext(bg, syscall.SIGTERM)
	defer cancel()
	store, err := sqlite.Open(ctx, db, "replicate")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	file, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	logf := func(format string, args ...any) { _, _ = fmt.Fprintf(file, format+"\n", args...) } // unbuffered: survives SIGKILL
	err = replicate.Run(ctx, replicate.Config{
		From: "src", Source: servertest.NewClient(src, "us-east-1"), Leases: store,
		To: "dst", Destination: servertest.NewClient(dst, "us-east-1"), MaxInFlight: 200,
		Transform: func(ctx context.Context, r consumer.Record) (producer.Record, bool, error) {
			logf("put %s %s/%d %s", r.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.Data)
			return replicate.Identity(ctx, r)
		},
		ConsumerOptions: append(fastConsumer(worker), consumer.WithFailoverTime(2*time.Second), consumer.WithHooks(checkpointHook(func(shard string, cp lease.Checkpoint, err error) {
			if err == nil {
				logf("cp %s %s", shard, cp)
			} else {
				logf("cperr %s %s %v", shard, cp, err)
			}
		}), lostHook(func(shard string) { logf("lost %s", shard) }))),
		ProducerOptions: []producer.Option{producer.MaxBufferedTime(5 * time.Millisecond), producer.RateLimit(0)},
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// replicator is a child process running TestReplicateChild.
type replicator struct {
	cmd *exec.Cmd
	log string
}

func startReplicator(t *testing.T, src, dst, db, dir, worker string) *replicator {
	t.Helper()
	r := &replicator{log: filepath.Join(dir, worker+".log")}
	r.cmd = exec.Command(os.Args[0], "-test.run=^TestReplicateChild$", "-test.count=1")
	r.cmd.Env = append(os.Environ(), replicateChildEnv+"="+strings.Join([]string{src, dst, db, worker, r.log}, "|"))
	r.cmd.Stderr = os.Stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); _ = r.cmd.Wait() })
	return r
}

// progress reads the child's log: how many records it forwarded, the
// records it forwarded after the last checkpoint of their shard before it
// lost that shard's lease (atLoss), and those at the end of the log (in
// flight when the process died).
func (r *replicator) progress(t *testing.T) (forwarded int, atLoss, atEnd map[string]int) {
	t.Helper()
	atLoss, atEnd = map[string]int{}, map[string]int{}
	f, err := os.Open(r.log)
	if os.IsNotExist(err) {
		return 0, atLoss, atEnd
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type fwd struct{ at, data string }
	open := map[string][]fwd{} // shard -> records forwarded and not checkpointed
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		switch {
		case len(p) == 4 && p[0] == "put":
			forwarded++
			open[p[1]] = append(open[p[1]], fwd{p[2], p[3]})
		case len(p) == 3 && p[0] == "cp":
			// A checkpoint covers the records up to it; later ones may have
			// been forwarded before it was written (the in-flight window).
			var still []fwd
			for _, f := range open[p[1]] {
				if p[2] != "SHARD_END" && comparePos(f.at, p[2]) > 0 {
					still = append(still, f)
				}
			}
			open[p[1]] = still
		case len(p) >= 3 && p[0] == "cperr":
			t.Logf("%s: %s", filepath.Base(r.log), sc.Text())
		case len(p) == 2 && p[0] == "lost":
			for _, f := range open[p[1]] {
				atLoss[f.data]++
			}
			open[p[1]] = nil
		}
		// Anything else is a line torn by the kill.
	}
	for _, recs := range open {
		for _, f := range recs {
			atEnd[f.data]++
		}
	}
	return forwarded, atLoss, atEnd
}

// comparePos compares two "SEQ/SUB" positions of one shard.
func comparePos(a, b string) int {
	aSeq, aSub, _ := strings.Cut(a, "/")
	bSeq, bSub, _ := strings.Cut(b, "/")
	if c := cmp.Compare(len(aSeq), len(bSeq)); c != 0 {
		return c
	}
	if c := strings.Compare(aSeq, bSeq); c != 0 {
		return c
	}
	x, _ := strconv.Atoi(aSub)
	y, _ := strconv.Atoi(bSub)
	return cmp.Compare(x, y)
}

func (r *replicator) forwarded(t *testing.T) int {
	n, _, _ := r.progress(t)
	return n
}

// TestReplicateKill9 replicates 20,000 records between two ksp servers with
// replicator processes sharing a SQLite lease table. The first two are
// killed with SIGKILL mid-way; the source is merged and the destination
// split while the second runs; two processes finish the job. Every record
// arrives, each key's records in order, and the only duplicates are records
// a killed process had forwarded after its shard's last checkpoint (counted
// and bounded by what was in flight at each kill).
func TestReplicateKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const keys, perKey = 200, 100 // 20,000 records
	srcSrv := servertest.Start(t, server.Options{DisableLimits: true})
	dstSrv := servertest.Start(t, server.Options{DisableLimits: true})
	src, dst := servertest.Client(t, srcSrv), servertest.Client(t, dstSrv)
	servertest.CreateStream(t, src, "src", 4)
	servertest.CreateStream(t, dst, "dst", 2)
	dir := t.TempDir()
	db := filepath.Join(dir, "leases.db")

	// The source gets each key's records in order, paced so that the
	// replicators are killed while records still arrive; the second half
	// only after the reshards.
	p, err := producer.New(src, "src", producer.StrictOrdering(true), producer.MaxBufferedTime(5*time.Millisecond), producer.RateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	var putting sync.WaitGroup
	putErr := make(chan error, 1)
	resharded := make(chan struct{}) // the second half waits for the reshards, so both sides' children carry records
	putting.Add(1)
	go func() {
		defer putting.Done()
		for n := range perKey {
			if n == perKey/2 {
				<-resharded
			}
			for k := range keys {
				if _, err := p.Put(bg, producer.Record{PartitionKey: fmt.Sprintf("k%03d", k), Data: []byte(keyed(k, n))}); err != nil {
					putErr <- err
					return
				}
			}
			if n%2 == 1 {
				time.Sleep(40 * time.Millisecond) // ~5 s for the whole load
			}
		}
		if err := p.Close(bg); err != nil {
			putErr <- err
		}
	}()
	t.Cleanup(func() {
		select {
		case <-resharded:
		default:
			close(resharded) // the test failed before the reshards
		}
		putting.Wait()
	})

	out := readStream(t, dst, "dst")
	begin := time.Now()
	kill := func(r *replicator) {
		t.Logf("%v: killing %s", time.Since(begin).Round(time.Millisecond), filepath.Base(r.log))
		if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = r.cmd.Wait()
	}

	r1 := startReplicator(t, srcSrv.URL(), dstSrv.URL(), db, dir, "r1")
	waitFor(t, 30*time.Second, "r1 forwarding 3,000 records", func() bool { return r1.forwarded(t) >= 3000 })
	kill(r1)

	r2 := startReplicator(t, srcSrv.URL(), dstSrv.URL(), db, dir, "r2")
	waitFor(t, 30*time.Second, "r2 forwarding records", func() bool { return r2.forwarded(t) >= 500 })
	// shardId-000000000000 and -001 of the source are adjacent; the
	// destination's shardId-000000000000 covers [0, 2^127-1]: split at 2^126.
	if _, err := src.MergeShards(bg, &kinesis.MergeShardsInput{StreamName: aws.String("src"),
		ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("dst"),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	close(resharded)
	waitFor(t, 30*time.Second, "r2 forwarding 3,000 more records", func() bool { return r2.forwarded(t) >= 3500 })
	kill(r2)

	r3 := startReplicator(t, srcSrv.URL(), dstSrv.URL(), db, dir, "r3")
	r4 := startReplicator(t, srcSrv.URL(), dstSrv.URL(), db, dir, "r4")
	waitFor(t, 60*time.Second, "every record at the destination", func() bool {
		select {
		case err := <-putErr:
			t.Fatalf("putting into the source: %v", err)
		default:
		}
		return out.unique() == keys*perKey
	})
	t.Logf("%v: every record at the destination", time.Since(begin).Round(time.Millisecond))
	for _, r := range []*replicator{r3, r4} {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		if err := r.cmd.Wait(); err != nil {
			t.Errorf("%s: %v", r.log, err)
		}
	}
	if r3.forwarded(t) == 0 || r4.forwarded(t) == 0 {
		t.Errorf("the last two processes did not share the work: r3 forwarded %d, r4 %d", r3.forwarded(t), r4.forwarded(t))
	}
	time.Sleep(200 * time.Millisecond) // a duplicate written last would show up now
	out.stop()

	if d := os.Getenv("KSP_REPLICATE_KEEP_LOGS"); d != "" { // debugging: keep the logs
		for _, r := range []*replicator{r1, r2, r3, r4} {
			b, _ := os.ReadFile(r.log)
			_ = os.WriteFile(filepath.Join(d, filepath.Base(r.log)), b, 0o644)
		}
	}
	// What was in flight at each kill, and at each lease lost under load (a
	// worker that cannot renew in time stops, as if it had died).
	inFlight := map[string]int{} // record -> times it was in flight at a kill or lost lease
	killed, lost := 0, 0
	for i, r := range []*replicator{r1, r2, r3, r4} {
		n, atLoss, atEnd := r.progress(t)
		if i >= 2 && len(atEnd) > 0 {
			t.Errorf("%s was stopped gracefully with %d records forwarded and not checkpointed", r.log, len(atEnd))
		}
		for d, n := range atLoss {
			inFlight[d] += n
			lost += n
		}
		for d, n := range atEnd {
			inFlight[d] += n
			killed += n
		}
		t.Logf("%s forwarded %d records; in flight: %d at its end, %d at lost leases", filepath.Base(r.log), n, len(atEnd), len(atLoss))
	}

	out.checkOrder(t, keys, perKey)
	// The reshards were followed: the source's merged child was read, the
	// destination's split children were written.
	merged := false
	for _, r := range []*replicator{r2, r3, r4} {
		b, err := os.ReadFile(r.log)
		if err != nil {
			t.Fatal(err)
		}
		merged = merged || strings.Contains(string(b), "put shardId-000000000004 ")
	}
	if !merged {
		t.Error("no record of the source's merged shard (shardId-000000000004) was forwarded")
	}
	if out.shards["shardId-000000000002"] == 0 || out.shards["shardId-000000000003"] == 0 {
		t.Errorf("records per destination shard %v; want some in the split's children (shardId-000000000002 and -003)", out.shards)
	}
	dups := 0
	for d, n := range out.seen {
		if n > 1 {
			dups += n - 1
			if n-1 > inFlight[d] {
				t.Errorf("record %s arrived %d times but was in flight at a kill or lost lease %d times", d, n, inFlight[d])
			}
		}
	}
	if dups > killed+lost {
		t.Errorf("%d duplicates, more than the %d records in flight at the kills and %d at lost leases", dups, killed, lost)
	}
	t.Logf("%d records, %d duplicates; in flight: %d at the two kills, %d at lost leases", keys*perKey, dups, killed, lost)
}
