package server

import (
	"context"
	"net"
	"sync"
	"time"
)

// connSet tracks every connection the server accepted, so that shutting
// down closes them all. net/http's Shutdown and Close cannot: an h2c
// connection is hijacked from net/http, and without this it (with its
// goroutines and, through the handler, the whole server and its store) lives
// until the client hangs up.
type connSet struct {
	mu     sync.Mutex // guards: conns, closed
	conns  map[*trackedConn]struct{}
	closed bool
}

// listen wraps ln so that its connections join the set.
func (cs *connSet) listen(ln net.Listener) net.Listener {
	return &trackingListener{Listener: ln, set: cs}
}

// add registers c, or reports false once the set is closed.
func (cs *connSet) add(c *trackedConn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	if cs.conns == nil {
		cs.conns = make(map[*trackedConn]struct{})
	}
	cs.conns[c] = struct{}{}
	return true
}

func (cs *connSet) remove(c *trackedConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.conns, c)
}

// closeAll waits up to grace (or until ctx ends) for the connections to
// close by themselves, then closes the rest, and every one accepted from
// now on.
func (cs *connSet) closeAll(ctx context.Context, grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	for cs.len() > 0 {
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	cs.mu.Lock()
	cs.closed = true
	conns := cs.conns
	cs.conns = nil
	cs.mu.Unlock()
	for c := range conns { // outside the lock: Close may block on a slow peer
		c.Conn.Close()
	}
}

func (cs *connSet) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

type trackingListener struct {
	net.Listener
	set *connSet
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.set}
	if !l.set.add(tc) {
		c.Close()
	}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}
