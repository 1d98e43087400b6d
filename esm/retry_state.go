package esm

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
)

// retryBook keeps a shard's failing batch across restarts. Lambda keeps a
// batch's retry count in the mapping's service, so restarting nothing
// resets MaximumRetryAttempts; ksp keeps it with the lease, as the pending
// checkpoint's state (consumer.Checkpointer.PrepareCheckpoint): the attempts
// still queued (bisected halves included) with their invokes and failures.
// The next checkpoint removes it, so it always describes the records right
// after the checkpoint. A nil *retryBook keeps the counts in memory only:
// with ParallelizationFactor above 1 (whose batchers fail independently) and
// with tumbling windows (checkpointed only when a window closes, so a
// restart replays the window from its start anyway).
type retryBook struct {
	log   *slog.Logger
	ckp   *consumer.Checkpointer // the shard's current one
	saved []savedAttempt         // read from the lease, until a batch takes it up
	last  []savedAttempt         // what the lease holds now (nil: none)
}

// savedAttempt is an attempt as stored: its first and last records'
// positions and its counts.
type savedAttempt struct {
	From     lease.Checkpoint `json:"from"`
	To       lease.Checkpoint `json:"to"`
	Invokes  int              `json:"invokes"`
	Failures int              `json:"failures"`
	FnErr    bool             `json:"functionError,omitempty"`
}

// retryStateVersion tags the stored JSON.
const retryStateVersion = 1

type retryState struct {
	Version  int            `json:"kspEsmRetryState"`
	Attempts []savedAttempt `json:"attempts"`
}

// load takes up the state the lease carried (none when it is not ours).
func (b *retryBook) load(state []byte) {
	b.saved, b.last = nil, nil
	if len(state) == 0 {
		return
	}
	var st retryState
	if err := json.Unmarshal(state, &st); err != nil || st.Version != retryStateVersion || len(st.Attempts) == 0 {
		b.log.Warn("ignoring the lease's pending checkpoint state: not a retry state of this version", "err", err)
		return
	}
	b.saved, b.last = st.Attempts, st.Attempts
}

// resume returns the attempts to run batch with: the saved ones when the
// batch starts where they did (cut at their boundaries, with their counts;
// records past them form one fresh attempt), else one fresh attempt.
func (b *retryBook) resume(batch []consumer.Record) []attempt {
	fresh := []attempt{{recs: batch}}
	if b == nil || len(b.saved) == 0 {
		return fresh
	}
	switch position(batch[0]).Compare(b.saved[0].From) {
	case -1:
		return fresh // the saved batch comes later (a window replaying)
	case 1:
		b.saved = nil // checkpointed past
		return fresh
	}
	saved := b.saved
	b.saved = nil
	var queue []attempt
	rest := batch
	for _, s := range saved {
		if len(rest) == 0 || position(rest[0]).Compare(s.From) != 0 {
			break
		}
		n := 0
		for n < len(rest) && position(rest[n]).Compare(s.To) <= 0 {
			n++
		}
		queue = append(queue, attempt{recs: rest[:n], invokes: s.Invokes, failures: s.Failures, fnErr: s.FnErr})
		rest = rest[n:]
	}
	if len(rest) > 0 {
		queue = append(queue, attempt{recs: rest})
	}
	return queue
}

// save stores the queue when it holds retry state (counts or bisected
// halves). A failed write is logged: the counts go on in memory.
func (b *retryBook) save(ctx context.Context, queue []attempt) {
	if b == nil {
		return
	}
	// Each save follows a checkpoint (which removed the state) or a
	// failure (whose state replaces it).
	b.last = nil
	if len(queue) == 0 || (len(queue) == 1 && queue[0].invokes == 0) {
		return
	}
	st := retryState{Version: retryStateVersion, Attempts: make([]savedAttempt, len(queue))}
	for i, a := range queue {
		st.Attempts[i] = savedAttempt{From: position(a.recs[0]), To: position(a.recs[len(a.recs)-1]),
			Invokes: a.invokes, Failures: a.failures, FnErr: a.fnErr}
	}
	state, err := json.Marshal(st)
	if err == nil {
		last := queue[len(queue)-1].recs
		err = b.ckp.PrepareCheckpoint(ctx, last[len(last)-1], state)
	}
	if err != nil {
		b.log.Warn("could not keep the retry state with the lease; a restart would start the batch's retries afresh", "err", err)
		return
	}
	b.last = st.Attempts
}

// rewind is called when the consumer delivers again from the checkpoint
// (after a processing error): the batch then resumes from what the lease
// holds.
func (b *retryBook) rewind() {
	if b != nil {
		b.saved = b.last
	}
}
