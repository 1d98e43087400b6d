package server

import (
	"github.com/ksp-project/ksp/kinesis"
)

type retentionInput struct {
	streamRef
	RetentionPeriodHours *integer `json:"RetentionPeriodHours"`
}

func (r *retentionInput) validate(v *validator) {
	r.streamRef.validate(v)
	if v.notNull("retentionPeriodHours", r.RetentionPeriodHours != nil) {
		v.intRange("retentionPeriodHours", int64(*r.RetentionPeriodHours), 1, 8760)
	}
}

func increaseRetention(s *Server, c *call) (any, error) { return changeRetention(s, c, true) }
func decreaseRetention(s *Server, c *call) (any, error) { return changeRetention(s, c, false) }

func changeRetention(s *Server, c *call, increase bool) (any, error) {
	req, err := decodeRequest[retentionInput](c)
	if err != nil {
		return nil, err
	}
	hours := int(*req.RetentionPeriodHours)
	st, err := s.lookup(req.streamRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	switch {
	case hours < kinesis.MinRetentionHours:
		st.mu.Unlock()
		return nil, kinesis.Errorf(kinesis.ErrCodeInvalidArgument, "Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", kinesis.MinRetentionHours, hours)
	case hours > kinesis.MaxRetentionHours:
		st.mu.Unlock()
		return nil, kinesis.Errorf(kinesis.ErrCodeInvalidArgument, "Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", kinesis.MaxRetentionHours, hours)
	case increase && hours < st.retentionHours:
		cur := st.retentionHours
		st.mu.Unlock()
		return nil, kinesis.Errorf(kinesis.ErrCodeInvalidArgument, "Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", hours, st.name, cur)
	case !increase && hours > st.retentionHours:
		cur := st.retentionHours
		st.mu.Unlock()
		return nil, kinesis.Errorf(kinesis.ErrCodeInvalidArgument, "Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", hours, st.name, cur)
	}
	st.retentionHours = hours
	st.mu.Unlock()
	return empty{}, s.saveMetaLocked()
}
