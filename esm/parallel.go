package esm

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
)

// keyGroup maps a partition key to one of n concurrent batchers, so the
// records of one key are always handled by the same one, in order.
func keyGroup(partitionKey string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(partitionKey))
	return int(h.Sum32() % uint32(n))
}

// runParallel runs recs (sizes[i]: recs[i]'s event JSON size) with
// ParallelizationFactor batchers at once, each taking the records of its
// partition keys in shard order. The shard is checkpointed only up to the
// longest prefix of recs that is entirely handled (or given up), so nothing
// is checkpointed past a record another batcher is still retrying. This
// goroutine alone writes checkpoints.
func (r *runner) runParallel(ctx context.Context, recs []consumer.Record, sizes []int, ckp *consumer.Checkpointer) error {
	n := r.s.ParallelizationFactor
	groups := make([][]consumer.Record, n)
	groupSizes := make([][]int, n)
	marks := newProgressMarks(len(recs), n)
	for i, rec := range recs {
		g := keyGroup(rec.PartitionKey, n)
		groups[g] = append(groups[g], rec)
		groupSizes[g] = append(groupSizes[g], sizes[i])
		marks.index[g] = append(marks.index[g], i)
	}
	type progress struct{ group, upTo int } // groups[group][:upTo] done
	// Each commit covers at least one record: len(recs) never blocks a sender.
	done := make(chan progress, len(recs))
	finished := make(chan error, n)
	parent := ctx // checkpoints outlive the batchers' cancellation
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	running := 0
	for g := range groups {
		if len(groups[g]) == 0 {
			continue
		}
		running++
		wg.Go(func() {
			pos := 0
			commit := func(_ context.Context, rec consumer.Record) error {
				for pos < len(groups[g]) && recordBefore(groups[g][pos], rec) {
					pos++
				}
				done <- progress{g, pos}
				return nil
			}
			finished <- r.runRecords(ctx, groups[g], groupSizes[g], nil, nil, commit)
		})
	}

	var errs []error
	apply := func(p progress) {
		if !marks.mark(p.group, p.upTo) {
			return
		}
		if err := ckp.CheckpointRecord(parent, recs[marks.prefix-1]); err != nil {
			errs = append(errs, err)
			cancel()
		}
	}
	for running > 0 {
		select {
		case p := <-done:
			apply(p)
		case err := <-finished:
			running--
			if err != nil {
				errs = append(errs, err)
				cancel() // the other batchers stop; the shard restarts from the checkpoint
			}
		}
	}
	for len(done) > 0 {
		apply(<-done)
	}
	return errors.Join(errs...)
}

// progressMarks tracks which records of a parallel run are handled, group
// by group in any order between groups, and the longest prefix of the run
// entirely handled. Each record is marked once, however many commits
// cover it.
type progressMarks struct {
	index   [][]int // index[g][j]: the run position of group g's j-th record
	marked  []int   // marked[g]: how many of index[g] are marked
	handled []bool  // by run position
	prefix  int     // handled[:prefix] are all true
}

func newProgressMarks(records, groups int) *progressMarks {
	return &progressMarks{index: make([][]int, groups), marked: make([]int, groups), handled: make([]bool, records)}
}

// mark notes that group g's first upTo records are handled, and reports
// whether the handled prefix grew.
func (m *progressMarks) mark(g, upTo int) bool {
	if upTo <= m.marked[g] {
		return false
	}
	for _, i := range m.index[g][m.marked[g]:upTo] {
		m.handled[i] = true
	}
	m.marked[g] = upTo
	from := m.prefix
	for m.prefix < len(m.handled) && m.handled[m.prefix] {
		m.prefix++
	}
	return m.prefix > from
}

// recordBefore reports that a is at or before b in the shard.
func recordBefore(a, b consumer.Record) bool {
	return position(a).Compare(position(b)) <= 0
}

func position(r consumer.Record) lease.Checkpoint {
	return lease.Checkpoint{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
}
