package server

import (
	"github.com/ksp-project/ksp/kds"
)

type listStreamConsumersInput struct {
	StreamARN               *string      `json:"StreamARN"`
	NextToken               *string      `json:"NextToken,omitempty"`
	MaxResults              *integer     `json:"MaxResults,omitempty"`
	StreamCreationTimestamp *epochMillis `json:"StreamCreationTimestamp,omitempty"`
}

func (r *listStreamConsumersInput) validate(v *validator) {
	if v.notNull("streamARN", r.StreamARN != nil) {
		v.streamARN("streamARN", r.StreamARN)
	}
	if r.NextToken != nil {
		v.length("nextToken", *r.NextToken, 1, 1048576)
	}
	if r.MaxResults != nil {
		v.intRange("maxResults", int64(*r.MaxResults), 1, 10000)
	}
}

// listStreamConsumers lists a stream's consumers in registration order, in
// pages of MaxResults (default 100); NextToken names the last one listed.
func listStreamConsumers(s *Server, c *call) (any, error) {
	req, err := decodeRequest[listStreamConsumersInput](c)
	if err != nil {
		return nil, err
	}
	st, err := s.lookup(streamRef{StreamARN: req.StreamARN})
	if err != nil {
		return nil, err
	}
	if req.StreamCreationTimestamp != nil && int64(*req.StreamCreationTimestamp)/1000 != st.created/1000 {
		return nil, s.notFound(st.name)
	}
	limit := 100
	if req.MaxResults != nil {
		limit = int(*req.MaxResults)
	}
	var after string
	if req.NextToken != nil {
		t, err := decodePageToken(*req.NextToken, c.now.UnixMilli())
		if err != nil {
			return nil, err
		}
		if t.Stream != st.name || t.Created != st.created {
			return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "NextToken %s was not issued for stream %s", *req.NextToken, st.name)
		}
		after = t.After
	}
	s.consumers.mu.Lock()
	list := s.consumers.byStream[st]
	start := 0
	if after != "" {
		start = len(list) // the consumer listed last is gone: the page is complete
		for i, x := range list {
			if x.arn == after {
				start = i + 1
				break
			}
		}
	}
	out := struct {
		Consumers []consumerDescription `json:"Consumers"`
		NextToken *string               `json:"NextToken,omitempty"`
	}{Consumers: []consumerDescription{}}
	for _, x := range list[start:] {
		if len(out.Consumers) == limit {
			out.NextToken = encodePageToken(pageToken{After: out.Consumers[limit-1].ConsumerARN, Stream: st.name, Created: st.created, Issued: c.now.UnixMilli()})
			break
		}
		out.Consumers = append(out.Consumers, x.describeLocked(false))
	}
	s.consumers.mu.Unlock()
	return out, nil
}
