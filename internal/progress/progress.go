// Package progress shows how long work is going: in a terminal, one status
// line redrawn in place; elsewhere (a pipe, a file, CI logs) a plain status
// line every so often, so the record stays readable and free of carriage
// returns. Text written through a Line while it runs appears above the
// status line in both modes.
package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// IsTerminal reports whether w is a terminal (a character device).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Mode says how a Line shows its status.
type Mode int

const (
	// Auto is Live when the writer is a terminal, Plain otherwise.
	Auto Mode = iota
	// Live redraws one line in place.
	Live
	// Plain prints a line every PlainEvery.
	Plain
)

// Options configure Start. The zero value suits a terminal or a log.
type Options struct {
	// Mode: Auto (default), Live or Plain.
	Mode Mode
	// Every is how often the live line is redrawn (default 250 ms).
	Every time.Duration
	// PlainEvery is how often a plain status line is printed (default 10 s).
	PlainEvery time.Duration
}

// Line shows a status, produced by a function, until Stop. It is safe for
// concurrent use.
type Line struct {
	w      io.Writer
	status func() string
	live   bool

	mu      sync.Mutex // guards: writes to w, drawn, partial
	drawn   bool       // a live status is on screen
	partial []byte     // text written without its final newline yet

	stop    chan struct{}
	done    chan struct{}
	stopped atomic.Bool
}

// Start shows status() on w until Stop: redrawn every o.Every in Live mode,
// printed every o.PlainEvery in Plain mode (the first one after a period,
// so short work prints nothing).
func Start(w io.Writer, status func() string, o Options) *Line {
	if o.Every <= 0 {
		o.Every = 250 * time.Millisecond
	}
	if o.PlainEvery <= 0 {
		o.PlainEvery = 10 * time.Second
	}
	live := o.Mode == Live || (o.Mode == Auto && IsTerminal(w))
	l := &Line{w: w, status: status, live: live, stop: make(chan struct{}), done: make(chan struct{})}
	every := o.PlainEvery
	if live {
		every = o.Every
	}
	go l.loop(every)
	return l
}

func (l *Line) loop(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.show()
		}
	}
}

// show draws the status once.
func (l *Line) show() {
	s := l.status()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live {
		fmt.Fprintf(l.w, "\r%s\x1b[K", s)
		l.drawn = true
		return
	}
	fmt.Fprintln(l.w, s)
}

// Write prints complete lines of p above the status line (in Live mode
// it erases the status first; the next tick redraws it). It holds a line's
// start until its newline, so lines from concurrent writers do not mix.
func (l *Line) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	i := bytes.LastIndexByte(l.partial, '\n')
	if i < 0 {
		return len(p), nil
	}
	l.erase()
	_, err := l.w.Write(l.partial[:i+1])
	l.partial = append(l.partial[:0], l.partial[i+1:]...)
	return len(p), err
}

// erase removes a live status from the screen. Called with mu held.
func (l *Line) erase() {
	if l.drawn {
		io.WriteString(l.w, "\r\x1b[K")
		l.drawn = false
	}
}

// Stop ends the status line (in Live mode it is erased) and prints any
// unfinished line written through Write. It may be called more than once.
func (l *Line) Stop() {
	if !l.stopped.CompareAndSwap(false, true) {
		<-l.done
		return
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	if len(l.partial) > 0 {
		l.w.Write(append(l.partial, '\n'))
		l.partial = nil
	}
}

// Phases is a Line whose status is the last line written through it and
// how long ago that was: for work that reports phases ("filling…",
// "draining…") and then is silent while each one runs.
type Phases struct {
	*Line
	mu    sync.Mutex // guards: last, since
	last  string
	since time.Time
}

// StartPhases shows the current phase on w until Stop.
func StartPhases(w io.Writer, o Options) *Phases {
	p := &Phases{since: time.Now()}
	p.Line = Start(w, p.status, o)
	return p
}

func (p *Phases) status() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	el := time.Since(p.since).Round(100 * time.Millisecond)
	if p.last == "" {
		return fmt.Sprintf("… %v", el)
	}
	return fmt.Sprintf("… %v in: %s", el, p.last)
}

// Write prints p and makes its last complete line the current phase.
func (p *Phases) Write(b []byte) (int, error) {
	if text := bytes.TrimRight(b, "\n"); len(text) > 0 && len(text) < len(b) {
		p.mu.Lock()
		p.last, p.since = string(text[bytes.LastIndexByte(text, '\n')+1:]), time.Now()
		p.mu.Unlock()
	}
	return p.Line.Write(b)
}

// Redraw replaces what a terminal shows with text (cursor home, clear
// screen): how a full-screen view such as `ksp top` refreshes in place.
func Redraw(w io.Writer, text string) error {
	_, err := io.WriteString(w, "\x1b[H\x1b[2J"+text)
	return err
}
