package server

import "github.com/ksp-project/ksp/internal/jsonwire"

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (without HTML escaping); invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte { return jsonwire.AppendString(dst, s) }

func appendJSONBlob(dst []byte, b []byte) []byte { return jsonwire.AppendBlob(dst, b) }
