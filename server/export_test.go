package server

import "sort"

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
