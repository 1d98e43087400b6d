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
	return s.updateStream(req.streamRef, func(_ *stream, set *streamSettings) error {
		set.encryption, set.keyID = kds.EncryptionKMS, *req.KeyId
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
	return s.updateStream(req.streamRef, func(st *stream, set *streamSettings) error {
		if set.encryption != kds.EncryptionKMS {
			return kds.Errorf(kds.ErrCodeInvalidArgument, "Stream %s under account %s is not encrypted.", st.name, s.opts.Account)
		}
		set.encryption, set.keyID = kds.EncryptionNone, ""
		return nil
	})
}
