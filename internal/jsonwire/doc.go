// Package jsonwire holds the small JSON pieces shared by ksp's fast codecs
// of the hot Kinesis calls, on the server (PutRecords requests in,
// GetRecords answers out) and in the client codecs of package sdkhttp
// (PutRecords requests out, GetRecords answers in): a Scanner for the
// subset those bodies use, and string and blob encoders that escape as
// encoding/json does. Decoders built on the Scanner take only the shapes
// they know and leave everything else to a complete decoder.
package jsonwire
