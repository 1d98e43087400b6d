package server

import (
	"github.com/ksp-project/ksp/kds"
)

type updateMaxRecordSizeInput struct {
	StreamARN          *string  `json:"StreamARN,omitempty"`
	MaxRecordSizeInKiB *integer `json:"MaxRecordSizeInKiB"`
}

func (r *updateMaxRecordSizeInput) validate(v *validator) {
	v.streamARN("streamARN", r.StreamARN)
	if v.notNull("maxRecordSizeInKiB", r.MaxRecordSizeInKiB != nil) {
		v.intRange("maxRecordSizeInKiB", int64(*r.MaxRecordSizeInKiB), kds.MinMaxRecordSizeKiB, kds.MaxMaxRecordSizeKiB)
	}
}

// updateMaxRecordSize changes the largest record (data + partition key) the
// stream accepts; PutRecord(s) enforce it from the next call on, and above
// the default 1 MiB a PutRecords request may carry 10 MiB.
func updateMaxRecordSize(s *Server, c *call) (any, error) {
	req, err := decodeRequest[updateMaxRecordSizeInput](c)
	if err != nil {
		return nil, err
	}
	return s.updateStream(streamRef{StreamARN: req.StreamARN}, func(_ *stream, set *streamSettings) error {
		set.maxRecordSizeKiB = int(*req.MaxRecordSizeInKiB)
		return nil
	})
}
