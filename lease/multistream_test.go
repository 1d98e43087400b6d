package lease_test

import (
	"errors"
	"testing"

	"github.com/ksp-project/ksp/lease"
)

// The strings are those of the KCL's own tests (StreamIdentifierTest,
// DynamoDBMultiStreamLeaseSerializerTest): what it accepts, ksp accepts,
// and what it refuses, ksp refuses.
func TestStreamIdentifierLikeKCL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want lease.StreamIdentifier
	}{
		{"123456789012:stream-name:1680616058", lease.StreamIdentifier{AccountID: "123456789012", StreamName: "stream-name", CreationEpoch: 1680616058}},
		{"123456789012:test-stream:1", lease.StreamIdentifier{AccountID: "123456789012", StreamName: "test-stream", CreationEpoch: 1}},
		// The KCL's pattern does not insist on 12 digits (the test case is
		// commented out in StreamIdentifierTest).
		{"123456789:stream-name:123", lease.StreamIdentifier{AccountID: "123456789", StreamName: "stream-name", CreationEpoch: 123}},
	} {
		got, err := lease.ParseStreamIdentifier(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseStreamIdentifier(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.in {
			t.Errorf("%+v.String() = %q, want %q", got, s, tc.in)
		}
	}
	for _, bad := range []string{
		":stream-name:123",             // missing account id
		"123456789abc:stream-name:123", // 12char alphanumeric account id
		"123456789012::123",            // missing stream name
		"123456789012:stream-name",     // missing delimiter and creation epoch
		"123456789012:stream-name:",    // missing creation epoch
		"123456789012:stream-name:-123",
		"123456789012:stream-name:abc",
		"123456789012:stream-name:0", // validateCreationEpoch: must be > 0
		"123456789012:stream-name:99999999999999999999",
		"",
		"::",
		"stream-name",
		"123456789012:a:b:1",
	} {
		if id, err := lease.ParseStreamIdentifier(bad); !errors.Is(err, lease.ErrInvalidArgument) {
			t.Errorf("ParseStreamIdentifier(%q) = %+v, %v; want ErrInvalidArgument", bad, id, err)
		}
	}
}

func TestMultiStreamLeaseKeyLikeKCL(t *testing.T) {
	// DynamoDBMultiStreamLeaseSerializerTest: LEASE_KEY = STREAM_IDENTIFIER + ":" + SHARD_ID.
	const key = "123456789012:test-stream:1:shardId-000000000000"
	id, shard, err := lease.ParseMultiStreamLeaseKey(key)
	if err != nil || id.String() != "123456789012:test-stream:1" || shard != "shardId-000000000000" {
		t.Fatalf("ParseMultiStreamLeaseKey(%q) = %+v, %q, %v", key, id, shard, err)
	}
	if got := lease.MultiStreamLeaseKey(id, shard); got != key {
		t.Fatalf("MultiStreamLeaseKey = %q, want %q", got, key)
	}
	l := lease.Lease{LeaseKey: key}
	if got, ok := l.StreamIdentifier(); !ok || got != id || l.ShardID() != shard {
		t.Fatalf("Lease.StreamIdentifier() = %+v, %v; ShardID() = %q", got, ok, l.ShardID())
	}
	for _, single := range []string{"shardId-000000000000", "stream:shardId-000000000000", "123456789012:test-stream:1:", "123456789012:test-stream:1"} {
		if _, _, err := lease.ParseMultiStreamLeaseKey(single); !errors.Is(err, lease.ErrInvalidArgument) {
			t.Errorf("ParseMultiStreamLeaseKey(%q) error = %v, want ErrInvalidArgument", single, err)
		}
		if _, ok := (lease.Lease{LeaseKey: single}).StreamIdentifier(); ok {
			t.Errorf("Lease{%q}.StreamIdentifier() reports a multi-stream lease", single)
		}
	}
}

// FuzzParseMultiStreamLeaseKey: any key either fails with
// ErrInvalidArgument or parses into parts that format back into a key that
// parses into the same parts.
func FuzzParseMultiStreamLeaseKey(f *testing.F) {
	for _, s := range []string{"123456789012:test-stream:1:shardId-000000000000", "shardId-1", "1:a:01:s", "::::", "1:a:1:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		id, shard, err := lease.ParseMultiStreamLeaseKey(key)
		if err != nil {
			if !errors.Is(err, lease.ErrInvalidArgument) {
				t.Fatalf("error %v does not match ErrInvalidArgument", err)
			}
			return
		}
		id2, shard2, err := lease.ParseMultiStreamLeaseKey(lease.MultiStreamLeaseKey(id, shard))
		if err != nil || id2 != id || shard2 != shard {
			t.Fatalf("%q: parsed %+v %q, formatted and parsed again %+v %q %v", key, id, shard, id2, shard2, err)
		}
	})
}
