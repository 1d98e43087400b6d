package breaker

import "time"

// buckets is how many slices a window is cut into: outcomes leave the
// window a slice at a time, so it slides in steps of window/buckets.
const buckets = 10

// window counts outcomes over the last span of time.
type window struct {
	span  time.Duration
	width time.Duration // of one bucket
	start time.Time     // of the current bucket
	cur   int           // index of the current bucket
	calls [buckets]int
	fails [buckets]int
}

func newWindow(span time.Duration, now time.Time) window {
	return window{span: span, width: span / buckets, start: now}
}

// roll moves the current bucket up to now, emptying the buckets it passes.
func (w *window) roll(now time.Time) {
	steps := int(now.Sub(w.start) / w.width)
	if steps <= 0 {
		return
	}
	for i := range min(steps, buckets) {
		j := (w.cur + 1 + i) % buckets
		w.calls[j], w.fails[j] = 0, 0
	}
	w.cur = (w.cur + steps) % buckets
	w.start = w.start.Add(time.Duration(steps) * w.width)
}

func (w *window) add(now time.Time, failed bool) {
	w.roll(now)
	w.calls[w.cur]++
	if failed {
		w.fails[w.cur]++
	}
}

func (w *window) counts(now time.Time) (calls, fails int) {
	w.roll(now)
	for i := range buckets {
		calls += w.calls[i]
		fails += w.fails[i]
	}
	return calls, fails
}
