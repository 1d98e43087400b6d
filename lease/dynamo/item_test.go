package dynamo

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FuzzDecodeItem feeds items with arbitrary attribute values, as a table
// shared with other programs may hold, to the decoder: it must not panic,
// and whatever it accepts must survive an encode and decode unchanged.
func FuzzDecodeItem(f *testing.F) {
	f.Add("shardId-000000000000", "w1", "12", "0", "TRIM_HORIZON", "0", "", "0", []byte(nil), "a", "b", "12.5", "")
	f.Add("k", "", "-1", "x", "", "1e3", "p", "9223372036854775808", []byte{1}, "", "", "NaN", "o")
	f.Fuzz(func(t *testing.T, key, owner, counter, switches, cp, sub, pending, pendingSub string, state []byte, parent, child, tput, cpOwner string) {
		item := map[string]types.AttributeValue{
			attrLeaseKey:               avS(key),
			attrLeaseOwner:             avS(owner),
			attrLeaseCounter:           &types.AttributeValueMemberN{Value: counter},
			attrOwnerSwitches:          &types.AttributeValueMemberN{Value: switches},
			attrCheckpoint:             avS(cp),
			attrCheckpointSubSeq:       &types.AttributeValueMemberN{Value: sub},
			attrPendingCheckpoint:      avS(pending),
			attrPendingCheckpointSub:   &types.AttributeValueMemberN{Value: pendingSub},
			attrPendingCheckpointState: &types.AttributeValueMemberB{Value: state},
			attrParentShardID:          avSS([]string{parent, child}),
			attrChildShardIDs:          avSS([]string{child}),
			attrThroughputKBps:         &types.AttributeValueMemberN{Value: tput},
			attrCheckpointOwner:        avS(cpOwner),
		}
		l, err := decodeItem(item)
		if err != nil {
			return
		}
		if l.ThroughputKBps != l.ThroughputKBps { // NaN never equals itself
			return
		}
		again, err := decodeItem(encodeItem(l))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", l, err)
		}
		if !reflect.DeepEqual(again, l) {
			t.Fatalf("round trip changed the lease:\n got  %+v\n want %+v", again, l)
		}
	})
}

func TestDecodeItemWrongType(t *testing.T) {
	t.Parallel()
	_, err := decodeItem(map[string]types.AttributeValue{
		attrLeaseKey:     avS("k"),
		attrLeaseCounter: avS("12"),
	})
	if err == nil || err.Error() != `lease item "k": attribute leaseCounter has type S, want N` {
		t.Fatalf("err = %v", err)
	}
}
