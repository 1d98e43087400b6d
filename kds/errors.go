package kds

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
)

// The AWS error codes of Kinesis Data Streams (the "__type" of an error body).
const (
	ErrCodeResourceNotFound           = "ResourceNotFoundException"
	ErrCodeResourceInUse              = "ResourceInUseException"
	ErrCodeInvalidArgument            = "InvalidArgumentException"
	ErrCodeValidation                 = "ValidationException"
	ErrCodeLimitExceeded              = "LimitExceededException"
	ErrCodeProvisionedThroughput      = "ProvisionedThroughputExceededException"
	ErrCodeExpiredIterator            = "ExpiredIteratorException"
	ErrCodeExpiredNextToken           = "ExpiredNextTokenException"
	ErrCodeAccessDenied               = "AccessDeniedException"
	ErrCodeSerialization              = "SerializationException"
	ErrCodeUnknownOperation           = "UnknownOperationException"
	ErrCodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	ErrCodeIncompleteSignature        = "IncompleteSignatureException"
	ErrCodeInvalidSignature           = "InvalidSignatureException"
	ErrCodeUnrecognizedClient         = "UnrecognizedClientException"
	ErrCodeInternalFailure            = "InternalFailure"
	ErrCodeServiceUnavailable         = "ServiceUnavailable"
	ErrCodeKMSThrottling              = "KMSThrottlingException"
	ErrCodeRequestEntityTooLarge      = "RequestEntityTooLargeException"
	ErrCodeInvalidAction              = "InvalidAction"
	ErrCodeThrottling                 = "ThrottlingException"
	ErrCodeRequestTimeout             = "RequestTimeoutException"
)

// codeInfo is one row of the error table.
type codeInfo struct {
	status    int
	retryable bool
}

// codes is the one table of AWS error codes, their HTTP status and whether a
// client may retry the same request. Codes not listed are 400 and not retryable.
var codes = map[string]codeInfo{
	ErrCodeResourceNotFound:           {http.StatusBadRequest, false},
	ErrCodeResourceInUse:              {http.StatusBadRequest, false},
	ErrCodeInvalidArgument:            {http.StatusBadRequest, false},
	ErrCodeValidation:                 {http.StatusBadRequest, false},
	ErrCodeLimitExceeded:              {http.StatusBadRequest, true},
	ErrCodeProvisionedThroughput:      {http.StatusBadRequest, true},
	ErrCodeExpiredIterator:            {http.StatusBadRequest, false},
	ErrCodeExpiredNextToken:           {http.StatusBadRequest, false},
	ErrCodeAccessDenied:               {http.StatusBadRequest, false},
	ErrCodeSerialization:              {http.StatusBadRequest, false},
	ErrCodeUnknownOperation:           {http.StatusBadRequest, false},
	ErrCodeMissingAuthenticationToken: {http.StatusBadRequest, false},
	ErrCodeIncompleteSignature:        {http.StatusBadRequest, false},
	ErrCodeInvalidSignature:           {http.StatusBadRequest, false},
	ErrCodeUnrecognizedClient:         {http.StatusBadRequest, false},
	ErrCodeInternalFailure:            {http.StatusInternalServerError, true},
	ErrCodeServiceUnavailable:         {http.StatusServiceUnavailable, true},
	ErrCodeKMSThrottling:              {http.StatusBadRequest, true},
	ErrCodeRequestEntityTooLarge:      {http.StatusRequestEntityTooLarge, false},
	ErrCodeThrottling:                 {http.StatusBadRequest, true},
	ErrCodeInvalidAction:              {http.StatusBadRequest, false},
	ErrCodeRequestTimeout:             {http.StatusRequestTimeout, true},
}

// KnownCode reports whether code is one of the AWS error codes above.
func KnownCode(code string) bool {
	_, ok := codes[code]
	return ok
}

// Error is a Kinesis service error: an AWS error code and a message. It
// satisfies smithy-go's APIError interface (ErrorCode, ErrorMessage,
// ErrorFault), so code written against the AWS SDK can inspect it as usual.
type Error struct {
	Code    string
	Message string
}

var _ smithy.APIError = (*Error)(nil)

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// ErrorCode returns the AWS error code.
func (e *Error) ErrorCode() string { return e.Code }

// ErrorMessage returns the message without the code.
func (e *Error) ErrorMessage() string { return e.Message }

// ErrorFault says whose fault the error is: the server's for 5xx codes
// (InternalFailure, ServiceUnavailable), the caller's for every other code.
func (e *Error) ErrorFault() smithy.ErrorFault {
	if e.HTTPStatus() >= http.StatusInternalServerError {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// HTTPStatus is the status the server answers this error with.
func (e *Error) HTTPStatus() int { return HTTPStatus(e.Code) }

// Retryable reports whether the same request may succeed later.
func (e *Error) Retryable() bool { return codes[e.Code].retryable }

// HTTPStatus returns the HTTP status for an AWS error code.
func HTTPStatus(code string) int {
	if c, ok := codes[code]; ok {
		return c.status
	}
	return http.StatusBadRequest
}

// Code returns the AWS error code of err, or "" when err carries none. It
// understands *Error and any error with an ErrorCode() string method, such as
// the AWS SDK's smithy.APIError.
func Code(err error) string {
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	return ""
}

// IsRetryable reports whether err is an AWS error a client may retry:
// throttling, limits and internal failures.
func IsRetryable(err error) bool {
	return codes[Code(err)].retryable
}

// IsThrottle reports whether err is a throughput or rate throttle.
func IsThrottle(err error) bool {
	switch Code(err) {
	case ErrCodeProvisionedThroughput, ErrCodeLimitExceeded, ErrCodeThrottling, ErrCodeKMSThrottling:
		return true
	}
	return false
}
