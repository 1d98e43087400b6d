package lease

import (
	"fmt"
	"strconv"
	"strings"
)

// StreamIdentifier names one stream of a multi-stream application as the
// KCL serializes it (common/StreamIdentifier.java, multi-stream form):
// "account:streamName:creationEpoch", for example
// "123456789012:stream-name:1680616058". The creation epoch (seconds, as in
// DescribeStreamSummary's StreamCreationTimestamp) tells apart a stream
// deleted and created again under the same name.
type StreamIdentifier struct {
	AccountID     string
	StreamName    string
	CreationEpoch int64
}

// String returns the KCL's serialized form, account:streamName:creationEpoch
// (StreamIdentifier.serialize).
func (id StreamIdentifier) String() string {
	return id.AccountID + ":" + id.StreamName + ":" + strconv.FormatInt(id.CreationEpoch, 10)
}

// ParseStreamIdentifier reads the serialized form as the KCL's
// StreamIdentifier.multiStreamInstance does: the whole string must match
// [0-9]+:[^:]+:[0-9]+ and the creation epoch must be positive. Errors match
// ErrInvalidArgument and name the value.
func ParseStreamIdentifier(s string) (StreamIdentifier, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return StreamIdentifier{}, fmt.Errorf("%w: stream identifier %q: want account:streamName:creationEpoch", ErrInvalidArgument, s)
	}
	account, name, epoch := parts[0], parts[1], parts[2]
	switch {
	case !isDecimal(account):
		return StreamIdentifier{}, fmt.Errorf("%w: stream identifier %q: account %q is not a decimal number", ErrInvalidArgument, s, account)
	case name == "":
		return StreamIdentifier{}, fmt.Errorf("%w: stream identifier %q: stream name is empty", ErrInvalidArgument, s)
	case !isDecimal(epoch):
		return StreamIdentifier{}, fmt.Errorf("%w: stream identifier %q: creation epoch %q is not a decimal number", ErrInvalidArgument, s, epoch)
	}
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil || n <= 0 {
		return StreamIdentifier{}, fmt.Errorf("%w: stream identifier %q: creation epoch %q must be a positive 64-bit number", ErrInvalidArgument, s, epoch)
	}
	return StreamIdentifier{AccountID: account, StreamName: name, CreationEpoch: n}, nil
}

// MultiStreamLeaseKey returns the key of a shard's lease in a multi-stream
// lease table: the stream identifier, ":" and the shard id
// (MultiStreamLease.getLeaseKey), for example
// "123456789012:test-stream:1:shardId-000000000000".
func MultiStreamLeaseKey(id StreamIdentifier, shardID string) string {
	return id.String() + ":" + shardID
}

// ParseMultiStreamLeaseKey splits a multi-stream lease key into its stream
// identifier and shard id. A single-stream key (a bare shard id) and any key
// whose stream part the KCL would not parse are errors matching
// ErrInvalidArgument.
func ParseMultiStreamLeaseKey(key string) (StreamIdentifier, string, error) {
	i := strings.LastIndexByte(key, ':')
	if i < 0 || i == len(key)-1 {
		return StreamIdentifier{}, "", fmt.Errorf("%w: lease key %q: want account:streamName:creationEpoch:shardId", ErrInvalidArgument, key)
	}
	id, err := ParseStreamIdentifier(key[:i])
	if err != nil {
		return StreamIdentifier{}, "", fmt.Errorf("lease key %q: %w", key, err)
	}
	return id, key[i+1:], nil
}

// StreamIdentifier returns the stream of a multi-stream lease, and false
// for a single-stream lease (whose key is a bare shard id).
func (l Lease) StreamIdentifier() (StreamIdentifier, bool) {
	id, _, err := ParseMultiStreamLeaseKey(l.LeaseKey)
	return id, err == nil
}
