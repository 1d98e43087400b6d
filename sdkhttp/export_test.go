package sdkhttp

import "github.com/aws/aws-sdk-go-v2/service/kinesis"

// FastDecoderTakes reports whether the fast GetRecords decoder takes body
// (rather than leaving it to the SDK's).
func FastDecoderTakes(body []byte) bool {
	return decodeGetRecords(body, new(kinesis.GetRecordsOutput), nil)
}

// FastCBORDecoderTakes reports whether the fast CBOR GetRecords decoder
// takes body.
func FastCBORDecoderTakes(body []byte) bool {
	return decodeGetRecordsCBOR(body, new(kinesis.GetRecordsOutput), nil)
}
