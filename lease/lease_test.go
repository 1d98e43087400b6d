package lease_test

import (
	"fmt"
	"testing"

	"github.com/ksp-project/ksp/lease"
)

func TestCheckpointCompare(t *testing.T) {
	t.Parallel()
	ordered := []lease.Checkpoint{
		lease.AtTimestamp,
		lease.TrimHorizon,
		lease.Latest,
		{SequenceNumber: "9"},
		{SequenceNumber: "9", SubSequenceNumber: 1},
		{SequenceNumber: "10"},
		{SequenceNumber: "49590338271490256608559692538361571095921575989136588898"},
		{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 3},
		{SequenceNumber: "49590338271490256608559692540925702759324208523137515618"},
		{SequenceNumber: "not-a-number"},
		lease.ShardEnd,
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
		}
	}
	if (lease.Checkpoint{SequenceNumber: "0010"}).Compare(lease.Checkpoint{SequenceNumber: "10"}) != 0 {
		t.Error("leading zeros change the order")
	}
}

func TestCheckpointSentinels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c                                        lease.Checkpoint
		sentinel, shardEnd, trim, latest, atTime bool
	}{
		{lease.ShardEnd, true, true, false, false, false},
		{lease.TrimHorizon, true, false, true, false, false},
		{lease.Latest, true, false, false, true, false},
		{lease.AtTimestamp, true, false, false, false, true},
		{lease.Checkpoint{SequenceNumber: "1"}, false, false, false, false, false},
	}
	for _, tc := range tests {
		c := tc.c
		got := [5]bool{c.IsSentinel(), c.IsShardEnd(), c.IsTrimHorizon(), c.IsLatest(), c.IsAtTimestamp()}
		want := [5]bool{tc.sentinel, tc.shardEnd, tc.trim, tc.latest, tc.atTime}
		if got != want {
			t.Errorf("%v: got %v, want %v", c, got, want)
		}
	}
	if !(lease.Checkpoint{}).IsZero() || lease.TrimHorizon.IsZero() {
		t.Error("IsZero")
	}
}

func TestLeaseHelpers(t *testing.T) {
	t.Parallel()
	l := lease.Lease{LeaseKey: "123456789012:orders:1700000000:shardId-000000000007", LeaseOwner: "b"}
	if l.ShardID() != "shardId-000000000007" {
		t.Errorf("ShardID = %q", l.ShardID())
	}
	if (lease.Lease{LeaseKey: "shardId-1"}).ShardID() != "shardId-1" {
		t.Error("ShardID of a single-stream key")
	}
	if l.Holder() != "b" || l.HandOffRequested() {
		t.Errorf("Holder = %q", l.Holder())
	}
	l.CheckpointOwner = "a"
	if l.Holder() != "a" || !l.HandOffRequested() {
		t.Errorf("Holder during hand-off = %q", l.Holder())
	}
	n := lease.Lease{ParentShardIDs: []string{"b", "a", "b", ""}, ChildShardIDs: []string{}, PendingCheckpointState: []byte{}}.Normalize()
	if fmt.Sprint(n.ParentShardIDs) != "[a b]" || n.ChildShardIDs != nil || n.PendingCheckpointState != nil {
		t.Errorf("Normalize = %+v", n)
	}
}

func ExampleCheckpoint_Compare() {
	last := lease.Checkpoint{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 4}
	next := lease.Checkpoint{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", SubSequenceNumber: 5}
	fmt.Println(last.Compare(next), next.Compare(lease.ShardEnd), lease.TrimHorizon.Compare(last))
	// Output: -1 -1 -1
}
