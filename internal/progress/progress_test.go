package progress

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the test reads while a Line writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitUntil polls (bounded) until cond holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 6000 { // 30 s at most: a bound for a hang
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestPlainPeriodicLines: not a terminal, the status comes as whole plain
// lines, with no carriage return or escape sequence, between the lines
// written through the Line, which stay whole.
func TestPlainPeriodicLines(t *testing.T) {
	var out syncBuffer
	var n atomic.Int64
	l := Start(&out, func() string { return fmt.Sprintf("status %d", n.Add(1)) }, Options{PlainEvery: 5 * time.Millisecond})
	if l.live {
		t.Fatal("a buffer was taken for a terminal")
	}
	fmt.Fprint(l, "first ")
	fmt.Fprint(l, "line\nsecond line\n")
	waitUntil(t, "two status lines", func() bool { return n.Load() >= 2 })
	fmt.Fprint(l, "unfinished")
	l.Stop()
	l.Stop()
	got := out.String()
	if strings.ContainsAny(got, "\r\x1b") {
		t.Fatalf("plain output has control characters: %q", got)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	var text, status []string
	for _, line := range lines {
		if strings.HasPrefix(line, "status ") {
			status = append(status, line)
		} else {
			text = append(text, line)
		}
	}
	if strings.Join(text, "|") != "first line|second line|unfinished" {
		t.Fatalf("written lines %q; want them whole and in order", text)
	}
	if len(status) < 2 {
		t.Fatalf("%d status lines; want at least 2: %q", len(status), got)
	}
	after := out.String()
	time.Sleep(20 * time.Millisecond)
	if out.String() != after {
		t.Fatal("the Line wrote after Stop")
	}
}

// TestLiveRedrawsInPlace: in a terminal, the status is redrawn on one line
// (carriage return, erase to end of line), erased before a written line and
// at Stop.
func TestLiveRedrawsInPlace(t *testing.T) {
	var out syncBuffer
	var n atomic.Int64
	l := Start(&out, func() string { return fmt.Sprintf("status %d", n.Add(1)) }, Options{Mode: Live, Every: 2 * time.Millisecond})
	waitUntil(t, "two redraws", func() bool { return n.Load() >= 2 })
	fmt.Fprintln(l, "a message")
	waitUntil(t, "a redraw after the message", func() bool { return strings.HasSuffix(out.String(), "\x1b[K") })
	l.Stop()
	got := out.String()
	if !strings.HasPrefix(got, "\rstatus 1\x1b[K\rstatus 2\x1b[K") {
		t.Fatalf("live output does not redraw in place: %q", got)
	}
	if !strings.Contains(got, "\x1b[K\r\x1b[Ka message\n\rstatus") {
		t.Fatalf("the status was not erased before the message and redrawn after: %q", got)
	}
	if !strings.HasSuffix(got, "\r\x1b[K") {
		t.Fatalf("Stop did not erase the status: %q", got)
	}
	if strings.Contains(got, "\n\n") {
		t.Fatalf("live output has empty lines: %q", got)
	}
}

// TestPhasesShowTheLastPhase: the status names the last line written.
func TestPhasesShowTheLastPhase(t *testing.T) {
	var out syncBuffer
	p := StartPhases(&out, Options{PlainEvery: 2 * time.Millisecond})
	fmt.Fprintln(p, "filling 4 shards")
	fmt.Fprintln(p, "draining")
	waitUntil(t, "a status naming the phase", func() bool { return strings.Contains(out.String(), "in: draining") })
	p.Stop()
	var text []string
	for _, line := range strings.Split(out.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "… ") {
			text = append(text, line)
		}
	}
	if strings.Join(text, "|") != "filling 4 shards|draining" {
		t.Fatalf("phase lines %q; want them whole and in order", text)
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, wr := range map[string]any{"a pipe": w, "a file": f, "a buffer": &bytes.Buffer{}} {
		if IsTerminal(wr.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("%s is taken for a terminal", name)
		}
	}
}

func TestRedraw(t *testing.T) {
	var b bytes.Buffer
	Redraw(&b, "table\n")
	if b.String() != "\x1b[H\x1b[2Jtable\n" {
		t.Fatalf("%q", b.String())
	}
}
