package server

import (
	"sort"
	"strconv"
	"strings"

	"github.com/ksp-project/ksp/kds"
)

const maxTagsPerStream = 50

func validateTags(v *validator, field string, tags map[string]string) {
	if len(tags) > maxTagsPerStream {
		v.fail("{...}", false, field, "have length less than or equal to "+strconv.Itoa(maxTagsPerStream))
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.length(field+".key", k, 1, 128)
		v.length(field+"."+k, tags[k], 0, 256)
	}
}

type tag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

type addTagsInput struct {
	streamRef
	Tags map[string]string `json:"Tags"`
}

func (r *addTagsInput) validate(v *validator) {
	r.streamRef.validate(v)
	if v.notNull("tags", r.Tags != nil) {
		if len(r.Tags) < 1 || len(r.Tags) > 10 {
			v.fail("{...}", false, "tags", "have length between 1 and 10")
		}
		validateTags(v, "tags", r.Tags)
	}
}

func addTagsToStream(s *Server, c *call) (any, error) {
	req, err := decodeRequest[addTagsInput](c)
	if err != nil {
		return nil, err
	}
	return s.addTags(req.streamRef, req.Tags)
}

// validTagChar is what Kinesis allows in tag keys and values: Unicode
// letters, digits, white space and _ . / = + - % @ (then '%' is refused apart).
func validTagChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0xC0 && r <= 0x1FFF, r >= 0x2C00 && r <= 0xD7FF:
		return true
	}
	return strings.ContainsRune("_./=+-@% ", r)
}

// checkTagChars applies Kinesis's tag character rules to the tags of
// AddTagsToStream, TagResource and CreateStream alike.
func checkTagChars(stream, account string, tags map[string]string) error {
	all := make([]string, 0, 2*len(tags))
	for k, v := range tags {
		all = append(all, k, v)
	}
	for _, t := range all {
		for _, r := range t {
			if !validTagChar(r) {
				return kds.Errorf(kds.ErrCodeInvalidArgument, "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - %% @.")
			}
		}
	}
	for _, t := range all {
		if strings.Contains(t, "%") {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Failed to add tags to stream %s under account %s because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.", stream, account)
		}
	}
	return nil
}

func (s *Server) addTags(ref streamRef, tags map[string]string) (any, error) {
	st, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	if err := checkTagChars(st.name, s.opts.Account, tags); err != nil {
		return nil, err
	}
	return s.updateSettings(st, func(set *streamSettings) error {
		n := len(set.tags)
		for k := range tags {
			if _, ok := set.tags[k]; !ok {
				n++
			}
		}
		if n > maxTagsPerStream {
			return kds.Errorf(kds.ErrCodeLimitExceeded, "Failed to add tags to stream %s under account %s because a given stream cannot have more than %d tags associated with it.", st.name, s.opts.Account, maxTagsPerStream)
		}
		for k, v := range tags {
			set.tags[k] = v
		}
		return nil
	})
}

type removeTagsInput struct {
	streamRef
	TagKeys []string `json:"TagKeys"`
}

func (r *removeTagsInput) validate(v *validator) {
	r.streamRef.validate(v)
	if v.notNull("tagKeys", r.TagKeys != nil) {
		if len(r.TagKeys) < 1 || len(r.TagKeys) > 50 {
			v.fail("[...]", false, "tagKeys", "have length between 1 and 50")
		}
		for _, k := range r.TagKeys {
			v.length("tagKeys.member", k, 1, 128)
		}
	}
}

func removeTagsFromStream(s *Server, c *call) (any, error) {
	req, err := decodeRequest[removeTagsInput](c)
	if err != nil {
		return nil, err
	}
	return s.removeTags(req.streamRef, req.TagKeys)
}

func (s *Server) removeTags(ref streamRef, keys []string) (any, error) {
	st, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	return s.updateSettings(st, func(set *streamSettings) error {
		for _, k := range keys {
			delete(set.tags, k)
		}
		return nil
	})
}

type listTagsInput struct {
	streamRef
	ExclusiveStartTagKey *string  `json:"ExclusiveStartTagKey,omitempty"`
	Limit                *integer `json:"Limit,omitempty"`
}

func (r *listTagsInput) validate(v *validator) {
	r.streamRef.validate(v)
	if r.Limit != nil {
		v.intRange("limit", int64(*r.Limit), 1, 50)
	}
	if r.ExclusiveStartTagKey != nil {
		v.length("exclusiveStartTagKey", *r.ExclusiveStartTagKey, 1, 128)
	}
}

type listTagsOutput struct {
	Tags        []tag `json:"Tags"`
	HasMoreTags bool  `json:"HasMoreTags"`
}

func listTagsForStream(s *Server, c *call) (any, error) {
	req, err := decodeRequest[listTagsInput](c)
	if err != nil {
		return nil, err
	}
	st, err := s.lookup(req.streamRef)
	if err != nil {
		return nil, err
	}
	limit := 50
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	after := ""
	if req.ExclusiveStartTagKey != nil {
		after = *req.ExclusiveStartTagKey
	}
	tags := st.sortedTags(after)
	out := listTagsOutput{Tags: tags}
	if len(tags) > limit {
		out.Tags, out.HasMoreTags = tags[:limit], true
	}
	return out, nil
}

func (st *stream) sortedTags(after string) []tag {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := []tag{}
	for k, v := range st.tags {
		if k > after {
			out = append(out, tag{Key: k, Value: ptr(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// The resource-tagging actions address a stream by its ARN.

type tagResourceInput struct {
	ResourceARN *string           `json:"ResourceARN"`
	Tags        map[string]string `json:"Tags"`
}

func (r *tagResourceInput) validate(v *validator) {
	if v.notNull("resourceARN", r.ResourceARN != nil) {
		v.streamARN("resourceARN", r.ResourceARN)
	}
	if v.notNull("tags", r.Tags != nil) {
		validateTags(v, "tags", r.Tags)
	}
}

func tagResource(s *Server, c *call) (any, error) {
	req, err := decodeRequest[tagResourceInput](c)
	if err != nil {
		return nil, err
	}
	return s.addTags(streamRef{StreamARN: req.ResourceARN}, req.Tags)
}

type untagResourceInput struct {
	ResourceARN *string  `json:"ResourceARN"`
	TagKeys     []string `json:"TagKeys"`
}

func (r *untagResourceInput) validate(v *validator) {
	if v.notNull("resourceARN", r.ResourceARN != nil) {
		v.streamARN("resourceARN", r.ResourceARN)
	}
	v.notNull("tagKeys", r.TagKeys != nil)
}

func untagResource(s *Server, c *call) (any, error) {
	req, err := decodeRequest[untagResourceInput](c)
	if err != nil {
		return nil, err
	}
	return s.removeTags(streamRef{StreamARN: req.ResourceARN}, req.TagKeys)
}

type listTagsForResourceInput struct {
	ResourceARN *string `json:"ResourceARN"`
}

func (r *listTagsForResourceInput) validate(v *validator) {
	if v.notNull("resourceARN", r.ResourceARN != nil) {
		v.streamARN("resourceARN", r.ResourceARN)
	}
}

func listTagsForResource(s *Server, c *call) (any, error) {
	req, err := decodeRequest[listTagsForResourceInput](c)
	if err != nil {
		return nil, err
	}
	st, err := s.lookup(streamRef{StreamARN: req.ResourceARN})
	if err != nil {
		return nil, err
	}
	return struct {
		Tags []tag `json:"Tags"`
	}{st.sortedTags("")}, nil
}
