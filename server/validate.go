package server

import (
	"strconv"
	"strings"

	"github.com/ksp-project/ksp/kds"
)

// validator collects constraint violations and renders them as AWS does:
// "2 validation errors detected: Value 'x' at 'streamName' failed to satisfy
// constraint: Member must ...; Value ...". AWS reports at most 10.
type validator struct{ errs []string }

func (v *validator) fail(value string, quoted bool, field, constraint string) {
	if len(v.errs) >= 10 {
		return
	}
	if quoted {
		value = "'" + value + "'"
	}
	v.errs = append(v.errs, "Value "+value+" at '"+field+"' failed to satisfy constraint: Member must "+constraint)
}

func (v *validator) err() error {
	switch n := len(v.errs); n {
	case 0:
		return nil
	case 1:
		return kds.Errorf(kds.ErrCodeValidation, "1 validation error detected: %s", v.errs[0])
	default:
		return kds.Errorf(kds.ErrCodeValidation, "%d validation errors detected: %s", n, strings.Join(v.errs, "; "))
	}
}

// notNull checks that a required member is present.
func (v *validator) notNull(field string, present bool) bool {
	if !present {
		v.fail("null", false, field, "not be null")
	}
	return present
}

// length checks a string's length as AWS (Java) counts it: in UTF-16 code
// units, so a character outside the BMP (an emoji) counts two.
func (v *validator) length(field, s string, min, max int) {
	n := utf16Len(s)
	if n < min {
		v.fail(s, true, field, "have length greater than or equal to "+strconv.Itoa(min))
	}
	if n > max {
		v.fail(s, true, field, "have length less than or equal to "+strconv.Itoa(max))
	}
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

func (v *validator) intRange(field string, n int64, min, max int64) {
	if n < min {
		v.fail(strconv.FormatInt(n, 10), true, field, "have value greater than or equal to "+strconv.FormatInt(min, 10))
	}
	if n > max {
		v.fail(strconv.FormatInt(n, 10), true, field, "have value less than or equal to "+strconv.FormatInt(max, 10))
	}
}

func (v *validator) pattern(field, s, pattern string, ok bool) {
	if !ok {
		v.fail(s, true, field, "satisfy regular expression pattern: "+pattern)
	}
}

func (v *validator) enum(field, s string, values ...string) {
	for _, x := range values {
		if s == x {
			return
		}
	}
	v.fail(s, true, field, "satisfy enum value set: ["+strings.Join(values, ", ")+"]")
}

const (
	streamNamePattern = "[a-zA-Z0-9_.-]+"
	shardIDPattern    = "[a-zA-Z0-9_.-]+"
	hashKeyPattern    = "0|([1-9]\\d{0,38})"
	seqNumPattern     = "0|([1-9]\\d{0,128})"
	streamARNPattern  = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"
)

func isNameChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// name validates a stream or consumer name member (optional unless required).
func (v *validator) name(field string, s *string, required bool) {
	if s == nil {
		if required {
			v.notNull(field, false)
		}
		return
	}
	v.length(field, *s, 1, kds.MaxStreamNameLength)
	v.pattern(field, *s, streamNamePattern, isNameChars(*s))
}

func (v *validator) streamARN(field string, s *string) {
	if s == nil {
		return
	}
	v.length(field, *s, 1, 2048)
	_, _, _, err := kds.ParseStreamARN(*s)
	v.pattern(field, *s, streamARNPattern, err == nil)
}

func (v *validator) shardID(field string, s *string, required bool) {
	if s == nil {
		if required {
			v.notNull(field, false)
		}
		return
	}
	v.length(field, *s, 1, 128)
	v.pattern(field, *s, shardIDPattern, isNameChars(*s))
}

func (v *validator) hashKey(field string, s *string) {
	if s != nil {
		_, err := kds.ParseHashKey(*s)
		v.pattern(field, *s, hashKeyPattern, err == nil || isDigits(*s))
	}
}

func (v *validator) seqNum(field string, s *string) {
	if s != nil {
		v.pattern(field, *s, seqNumPattern, kds.ValidSequenceNumber(*s))
	}
}

func isDigits(s string) bool {
	if s == "" || (s[0] == '0' && len(s) > 1) || len(s) > 39 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
