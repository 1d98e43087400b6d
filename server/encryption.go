package server

import (
	"github.com/ksp-project/ksp/kds"
)

// ksp accepts server-side encryption settings and reports them (DescribeStream
// EncryptionType and KeyId) but stores records as they come: it performs no
// encryption and calls no KMS.

type streamEncryptionInput struct {
	streamRef
	EncryptionType *kds.EncryptionType `json:"EncryptionType"`
	KeyId          *string             `json:"KeyId"`
}

func (r *streamEncryptionInput) validate(v *validator) {
	r.streamRef.validate(v)
	if v.notNull("encryptionType", r.EncryptionType != nil) {
		oneOf(v, "encryptionType", *r.EncryptionType, kds.EncryptionTypes)
	}
	if v.notNull("keyId", r.KeyId != nil) {
		v.length("keyId", *r.KeyId, 1, 2048)
	}
}

func startStreamEncryption(s *Server, c *call) (any, error) {
	req, err := decodeRequest[streamEncryptionInput](c)
	if err != nil {
		return nil, err
	}
	if *req.EncryptionType != kds.EncryptionKMS {
		return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "Encryption type %s is not supported by StartStreamEncryption. Supported encryption type is KMS.", *req.EncryptionType)
	}
	return s.updateStream(req.streamRef, func(st *stream) error {
		st.encryption, st.keyID = kds.EncryptionKMS, *req.KeyId
		return nil
	})
}

func stopStreamEncryption(s *Server, c *call) (any, error) {
	req, err := decodeRequest[streamEncryptionInput](c)
	if err != nil {
		return nil, err
	}
	if *req.EncryptionType != kds.EncryptionKMS {
		return nil, kds.Errorf(kds.ErrCodeInvalidArgument, "Encryption type %s is not supported by StopStreamEncryption. Supported encryption type is KMS.", *req.EncryptionType)
	}
	return s.updateStream(req.streamRef, func(st *stream) error {
		if st.encryption != kds.EncryptionKMS {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Stream %s under account %s is not encrypted.", st.name, s.opts.Account)
		}
		st.encryption, st.keyID = kds.EncryptionNone, ""
		return nil
	})
}

// updateStream applies change to an ACTIVE stream and saves the metadata.
// With Options.CreateDelay the stream is UPDATING for that long, as on AWS.
// change runs with st.mu held and may refuse with an error (nothing changes).
func (s *Server) updateStream(ref streamRef, change func(st *stream) error) (any, error) {
	st, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.mu.Lock()
	if st.status != statusActive {
		st.mu.Unlock()
		return nil, kds.Errorf(kds.ErrCodeResourceInUse, "Stream %s under account %s not ACTIVE, instead in state %s", st.name, s.opts.Account, st.status)
	}
	if err := change(st); err != nil {
		st.mu.Unlock()
		return nil, err
	}
	if s.opts.CreateDelay > 0 {
		st.status = statusUpdating
	}
	st.mu.Unlock()
	if err := s.saveMetaLocked(); err != nil {
		return nil, err
	}
	if s.opts.CreateDelay > 0 {
		s.after(s.opts.CreateDelay, func() { s.setStatus(st, statusUpdating, statusActive) })
	}
	return empty{}, nil
}
