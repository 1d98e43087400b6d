package esm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu                        sync.Mutex // guards: all fields
	polled, filtered, invokes int
	errors, ages              int
	dropped                   []string
}

func (r *recorder) OnInvoke(_ string, _ int, _ time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invokes++
	if err != nil {
		r.errors++
	}
}

func (r *recorder) OnIteratorAge(_ string, age time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if age >= 0 {
		r.ages++
	}
}

func (r *recorder) OnEvents(_ string, polled, filtered int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.polled += polled
	r.filtered += filtered
}

func (r *recorder) OnDropped(_, condition string, records int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped = append(r.dropped, fmt.Sprintf("%s %d %v", condition, records, err))
}

func TestHooksMirrorLambdaMetrics(t *testing.T) {
	s := newStream(t, 0)
	for i := range 5 {
		s.putData(fmt.Sprintf(`{"n":%d}`, i))
	}
	rec := &recorder{}
	cfg := s.config()
	cfg.BatchSize = 2
	cfg.MaximumRetryAttempts = Int(0)
	cfg.FilterCriteria = []string{`{"data":{"n":[{"anything-but":[2]}]}}`}
	cfg.Hooks = []Hook{rec}
	refused := false
	cfg.OnFailure = DestinationFunc(func(context.Context, InvocationRecord) error {
		if !refused {
			refused = true
			return errors.New("down")
		}
		return nil
	})
	got := run(s, cfg, failing(s, -1, `{"n":3}`))
	expectLog(t, got, `invoke {"n":0},{"n":1}`, "checkpoint r1", `invoke {"n":3},{"n":4}`, "checkpoint r4")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.polled != 5 || rec.filtered != 1 || rec.invokes != 2 || rec.errors != 1 || rec.ages != 2 {
		t.Fatalf("polled %d filtered %d invokes %d errors %d ages %d; want 5 1 2 1 2", rec.polled, rec.filtered, rec.invokes, rec.errors, rec.ages)
	}
	if want := []string{"RetryAttemptsExhausted 2 down", "RetryAttemptsExhausted 2 <nil>"}; !slices.Equal(rec.dropped, want) {
		t.Fatalf("dropped %q, want %q", rec.dropped, want)
	}
}
