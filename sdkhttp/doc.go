// Package sdkhttp builds the HTTP clients ksp gives aws-sdk-go-v2, carries
// ksp's workaround for a smithy-go bug that cuts responses over HTTP/1.1,
// and ksp's codecs for the two hot Kinesis calls.
//
// # The workaround
//
// smithy-go (up to and including v1.28.9) wraps every request body in a
// reader whose WriteTo answers io.EOF once the body is closed, and closes the
// body as soon as the HTTP client's Do returns. net/http's HTTP/1.1 transport
// drains the body once more after writing it (to detect a body longer than
// its Content-Length), through io.Copy, which calls WriteTo. When the server
// answered before that drain ran, the drain fails with io.EOF and the
// transport closes the connection under the response the SDK is still
// reading: the call fails with "deserialization failed ... use of closed
// network connection", and with SDK retries a PutRecords that the server
// applied is sent again (duplicates in the stream). HTTP/2 does not drain, so
// it is not affected. See docs/smithy-http11-bug.md.
//
// [FixKinesis] and [FixDynamoDB] are per-operation options that hide the
// body's WriteTo from net/http, so the drain reads the closed body, gets a
// clean io.EOF and keeps the connection. ksp's producer, consumer and
// lease/dynamo pass them to every call they make, also on clients you build
// yourself. To fix every call of your own clients, apply [Fix] once to the
// HTTP client in aws.Config (after any option that replaces HTTPClient):
//
//	cfg.HTTPClient = sdkhttp.Fix(cfg.HTTPClient)
//
// Remove the workaround once ksp requires a smithy-go release with commit
// 700b4367 ("safeWriteToReadCloser.WriteTo reports a closed body as a
// finished write").
//
// # Codecs
//
// [FastCodecs] is a kinesis.Options function that replaces the SDK's JSON
// codec for PutRecords requests and GetRecords answers, through the SDK's
// own extension point (kinesis.Options.Protocol, wrapped; every other call
// and every error answer goes to the SDK's codec unchanged, so typed errors
// such as ProvisionedThroughputExceededException stay typed):
//
//   - PutRecords is written into a pooled buffer sized for the request at
//     once, which goes back to the pool when the call has finished, retries
//     included (a middleware of the call's Initialize step; by then
//     smithy-go has closed every attempt's body, and the SigV4 hash, which
//     needs the seekable body, is done). smithy-go's encoder never returns
//     its buffer to its pool, so each request grows one from zero.
//   - A 2xx GetRecords answer is read into a pooled buffer (smithy-go drops
//     the buffers over 64 KB it reads answers into, so each large answer
//     was read into a fresh one) and decoded straight into
//     kinesis.GetRecordsOutput: the records' data in slabs of 256 KiB (so a
//     kept record pins at most one), their strings in one string, timestamps as the SDK reads them (epoch
//     seconds, truncated to milliseconds). The output owns all of it; the
//     pooled buffer is not referenced once the call returns. Members the
//     SDK does not know are skipped, as the SDK skips them. An answer of
//     another shape (escaped UTF-16 surrogates, nulls, repeated members,
//     bad base64) is handed to the SDK's decoder as it was read, so the result
//     is always the SDK's; tests and FuzzGetRecordsDecode compare the two.
//
// The buffers kept between calls take at most 64 MiB of the process's
// memory, and only as much as calls used at once.
//
// A reader that knows when it is done with an answer's data can lend the
// decoder its slabs ([SlabPool], [WithSlabs]) and release them afterwards,
// so a long-running reader decodes into the same memory instead of about
// 10 MB of fresh slabs per full answer; ksp's consumer does, since a
// record's Data is valid only until its processing call returns.
//
// ksp's producer and consumer pass FastCodecs to their PutRecords and
// GetRecords calls, also on clients you build yourself; to give it to every
// call of your own client:
//
//	client := kinesis.NewFromConfig(cfg, sdkhttp.FastCodecs)
//
// [FastCodecsCBOR] (opt-in) also has GetRecords speak CBOR
// (application/x-amz-cbor-1.1), which Kinesis and ksp's server speak and the
// Java SDK uses by default: the records' data travel as byte strings, so
// neither side base64-codes them. The SDK reads only JSON, so a CBOR answer
// of a shape the CBOR decoder does not take, and every CBOR error answer,
// is transcoded to the JSON Kinesis would have sent (byte strings as base64,
// tag-1 epoch milliseconds as epoch seconds) and handed to the SDK's
// decoder: errors stay typed, and the output is the one the SDK reads from
// the same answer in JSON, timestamps included (TestGetRecordsCBORMatchesSDK,
// FuzzGetRecordsCBORDecode, TestFastCodecsThroughServer). A consumer whose
// client was built with it keeps it:
//
//	client := kinesis.NewFromConfig(cfg, sdkhttp.FastCodecsCBOR)
//
// # Clients
//
// [NewH2C] speaks HTTP/2 without TLS (prior knowledge) to a ksp server, as
// the Java SDK speaks HTTP/2 to Kinesis; [NewPooled] speaks HTTP/1.1 (and
// HTTP/2 over TLS) with a connection pool sized for load.
package sdkhttp
