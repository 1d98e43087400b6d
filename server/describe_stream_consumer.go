package server

func describeStreamConsumer(s *Server, c *call) (any, error) {
	cons, err := s.requestedConsumer(c)
	if err != nil {
		return nil, err
	}
	s.consumers.mu.Lock()
	desc := cons.describeLocked(true)
	s.consumers.mu.Unlock()
	return struct {
		ConsumerDescription consumerDescription `json:"ConsumerDescription"`
	}{desc}, nil
}
