package follow

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestLineageLoopEnds: shards that name each other as parents (a listing no
// Kinesis would give) end the walk instead of recursing for ever, and the
// scope is still right for a shard descended from the followed one.
func TestLineageLoopEnds(t *testing.T) {
	f := &follower{opts: Options{Shard: "root"}, shards: map[string]types.Shard{
		"root":  {ShardId: aws.String("root")},
		"a":     {ShardId: aws.String("a"), ParentShardId: aws.String("b")},
		"b":     {ShardId: aws.String("b"), ParentShardId: aws.String("a"), AdjacentParentShardId: aws.String("b")},
		"child": {ShardId: aws.String("child"), ParentShardId: aws.String("a"), AdjacentParentShardId: aws.String("root")},
	}}
	if f.followedLocked("a") {
		t.Error("a shard in a parent loop away from the followed shard is in scope")
	}
	if !f.followedLocked("child") {
		t.Error("a child of the followed shard is out of scope")
	}
}
