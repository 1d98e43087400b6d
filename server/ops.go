package server

import (
	"github.com/ksp-project/ksp/kds"
)

// operations maps each Kinesis action to its handler. A nil handler is an
// action ksp knows but does not implement yet: it answers
// UnknownOperationException naming the action, never a fake success.
var operations = map[string]handler{
	"CreateStream":                  createStream,
	"DeleteStream":                  deleteStream,
	"DescribeStream":                describeStream,
	"DescribeStreamSummary":         describeStreamSummary,
	"ListStreams":                   listStreams,
	"ListShards":                    listShards,
	"PutRecord":                     putRecord,
	"PutRecords":                    putRecords,
	"GetShardIterator":              getShardIterator,
	"GetRecords":                    getRecords,
	"IncreaseStreamRetentionPeriod": increaseRetention,
	"DecreaseStreamRetentionPeriod": decreaseRetention,
	"AddTagsToStream":               addTagsToStream,
	"RemoveTagsFromStream":          removeTagsFromStream,
	"ListTagsForStream":             listTagsForStream,
	"TagResource":                   tagResource,
	"UntagResource":                 untagResource,
	"ListTagsForResource":           listTagsForResource,
	"DescribeLimits":                describeLimits,
	"UpdateStreamMode":              updateStreamMode,
	"SplitShard":                    splitShard,
	"MergeShards":                   mergeShards,
	"UpdateShardCount":              updateShardCount,

	"UpdateMaxRecordSize":        updateMaxRecordSize,
	"StartStreamEncryption":      startStreamEncryption,
	"StopStreamEncryption":       stopStreamEncryption,
	"EnableEnhancedMonitoring":   enableEnhancedMonitoring,
	"DisableEnhancedMonitoring":  disableEnhancedMonitoring,
	"RegisterStreamConsumer":     registerStreamConsumer,
	"DeregisterStreamConsumer":   deregisterStreamConsumer,
	"DescribeStreamConsumer":     describeStreamConsumer,
	"ListStreamConsumers":        listStreamConsumers,
	"SubscribeToShard":           subscribeToShard,
	"GetResourcePolicy":          nil,
	"PutResourcePolicy":          nil,
	"DeleteResourcePolicy":       nil,
	"DescribeAccountSettings":    nil,
	"UpdateAccountSettings":      nil,
	"UpdateStreamWarmThroughput": nil,
}

// validated is implemented by requests that check their own members.
type validated interface{ validate(v *validator) }

// decodeRequest decodes and validates a request of type T.
func decodeRequest[T any](c *call) (*T, error) {
	req := new(T)
	if err := c.decode(req); err != nil {
		return nil, err
	}
	if err := validateRequest(req); err != nil {
		return nil, err
	}
	return req, nil
}

// validateRequest runs a request's own member checks, if it has any.
func validateRequest(req any) error {
	r, ok := req.(validated)
	if !ok {
		return nil
	}
	var v validator
	r.validate(&v)
	return v.err()
}

// streamRef is how requests name a stream: by StreamName or StreamARN.
type streamRef struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
}

func (r *streamRef) validate(v *validator) {
	v.name("streamName", r.StreamName, false)
	v.streamARN("streamARN", r.StreamARN)
}

// lookup finds the stream a request names. Caller must not hold s.mu.
func (s *Server) lookup(r streamRef) (*stream, error) {
	name, err := s.refName(r)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	st := s.streams[name]
	s.mu.RUnlock()
	if st == nil {
		return nil, s.notFound(name)
	}
	return st, nil
}

func (s *Server) refName(r streamRef) (string, error) {
	if r.StreamARN != nil {
		region, account, name, err := kds.ParseStreamARN(*r.StreamARN)
		if err != nil {
			return "", kds.Errorf(kds.ErrCodeInvalidArgument, "StreamARN %s is not a valid stream ARN", *r.StreamARN)
		}
		if region != s.opts.Region || account != s.opts.Account {
			return "", kds.Errorf(kds.ErrCodeResourceNotFound, "Stream %s under account %s not found.", name, account)
		}
		if r.StreamName != nil && *r.StreamName != name {
			return "", kds.Errorf(kds.ErrCodeInvalidArgument, "StreamARN %s and StreamName %s name different streams", *r.StreamARN, *r.StreamName)
		}
		return name, nil
	}
	if r.StreamName == nil {
		return "", kds.Errorf(kds.ErrCodeInvalidArgument, "Either StreamName or StreamARN must be provided")
	}
	return *r.StreamName, nil
}

func (s *Server) notFound(name string) error {
	return kds.Errorf(kds.ErrCodeResourceNotFound, "Stream %s under account %s not found.", name, s.opts.Account)
}

// activeStream finds a stream that accepts data operations (ACTIVE or UPDATING).
func (s *Server) activeStream(r streamRef) (*stream, error) {
	st, err := s.lookup(r)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	status := st.status
	st.mu.RUnlock()
	if status != statusActive && status != statusUpdating {
		return nil, s.notFound(st.name)
	}
	return st, nil
}

// empty is the response of actions that answer nothing.
type empty struct{}

func ptr[T any](v T) *T { return &v }
