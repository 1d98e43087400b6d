package server

import (
	"encoding/base64"
	"encoding/json"
	"sort"

	"github.com/ksp-project/ksp/kds"
)

type streamSummary struct {
	StreamName              string            `json:"StreamName"`
	StreamARN               string            `json:"StreamARN"`
	StreamStatus            string            `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails `json:"StreamModeDetails"`
	StreamCreationTimestamp epochMillis       `json:"StreamCreationTimestamp"`
}

type listStreamsInput struct {
	Limit                    *integer `json:"Limit,omitempty"`
	ExclusiveStartStreamName *string  `json:"ExclusiveStartStreamName,omitempty"`
	NextToken                *string  `json:"NextToken,omitempty"`
}

func (r *listStreamsInput) validate(v *validator) {
	if r.Limit != nil {
		v.intRange("limit", int64(*r.Limit), 1, 10000)
	}
	v.name("exclusiveStartStreamName", r.ExclusiveStartStreamName, false)
	if r.NextToken != nil {
		v.length("nextToken", *r.NextToken, 1, 1048576)
	}
}

type listStreamsOutput struct {
	StreamNames     []string        `json:"StreamNames"`
	HasMoreStreams  bool            `json:"HasMoreStreams"`
	NextToken       *string         `json:"NextToken,omitempty"`
	StreamSummaries []streamSummary `json:"StreamSummaries"`
}

// pageToken is the content of ListStreams and ListShards NextTokens.
type pageToken struct {
	After   string `json:"a"`
	Limit   int    `json:"l,omitempty"`
	Stream  string `json:"s,omitempty"`
	Created int64  `json:"c,omitempty"`
	Issued  int64  `json:"i"`
	Filter  []byte `json:"f,omitempty"`
}

func encodePageToken(t pageToken) *string {
	b, _ := json.Marshal(t)
	return ptr(base64.RawURLEncoding.EncodeToString(b))
}

// decodePageToken checks a NextToken and its age (tokens live 300 s, as on AWS).
func decodePageToken(text string, nowMs int64) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Issued == 0 {
		return t, kds.Errorf(kds.ErrCodeInvalidArgument, "NextToken %s is not a token this server issued", text)
	}
	if nowMs-t.Issued > 300_000 {
		return t, kds.Errorf(kds.ErrCodeExpiredNextToken, "The NextToken has expired; it was issued %d ms ago and tokens last 300000 ms", nowMs-t.Issued)
	}
	return t, nil
}

func listStreams(s *Server, c *call) (any, error) {
	req, err := decodeRequest[listStreamsInput](c)
	if err != nil {
		return nil, err
	}
	limit := 100
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	after := ""
	if req.ExclusiveStartStreamName != nil {
		after = *req.ExclusiveStartStreamName
	}
	if req.NextToken != nil {
		if req.ExclusiveStartStreamName != nil {
			return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "NextToken and ExclusiveStartStreamName cannot be provided together")
		}
		t, err := decodePageToken(*req.NextToken, c.now.UnixMilli())
		if err != nil {
			return nil, err
		}
		after = t.After
	}
	s.mu.RLock()
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		if n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := listStreamsOutput{StreamNames: []string{}, StreamSummaries: []streamSummary{}}
	for _, n := range names {
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			break
		}
		st := s.streams[n]
		st.mu.RLock()
		out.StreamNames = append(out.StreamNames, n)
		out.StreamSummaries = append(out.StreamSummaries, streamSummary{
			StreamName: n, StreamARN: st.arn, StreamStatus: st.status,
			StreamModeDetails: streamModeDetails{StreamMode: st.mode}, StreamCreationTimestamp: epochMillis(st.created),
		})
		st.mu.RUnlock()
	}
	s.mu.RUnlock()
	if out.HasMoreStreams {
		out.NextToken = encodePageToken(pageToken{After: out.StreamNames[len(out.StreamNames)-1], Issued: c.now.UnixMilli()})
	}
	return out, nil
}
