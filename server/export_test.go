package server

import (
	"sort"
	"sync"
)

// ImplementedOperations lists the actions ksp serves, sorted, so that the
// fuzz targets cover every one.
func ImplementedOperations() []string {
	var ops []string
	for op, fn := range operations {
		if fn != nil {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

// ActiveRequests is the number of API requests being served (subscriptions
// included), so tests can see a handler return.
func (s *Server) ActiveRequests() int { return s.active.count() }

// HoldDelays makes every CreateDelay that starts from now on end only once
// release is called (and its time has passed), so a test can see the
// transitional status (CREATING, DELETING, UPDATING) however slow the
// machine is. release is idempotent.
func (s *Server) HoldDelays() (release func()) {
	ch := make(chan struct{})
	s.held.Store(&ch)
	return sync.OnceFunc(func() {
		s.held.CompareAndSwap(&ch, nil)
		close(ch)
	})
}

// SigningKeysCached is how many derived SigV4 signing keys s keeps.
func SigningKeysCached(s *Server) int {
	s.sigKeys.mu.Lock()
	defer s.sigKeys.mu.Unlock()
	return len(s.sigKeys.keys)
}

// decodePutRecordsJSON is the fast PutRecords decoder in memory of its own.
func decodePutRecordsJSON(body []byte) (*putRecordsInput, bool) {
	return new(putScratch).decodeJSON(body, false)
}
