package kds

import (
	"fmt"
	"strings"
)

// StreamARN returns arn:aws:kinesis:REGION:ACCOUNT:stream/NAME.
func StreamARN(region, account, stream string) string {
	return "arn:aws:kinesis:" + region + ":" + account + ":stream/" + stream
}

// ConsumerARN returns the ARN of a stream consumer registered at creation (epoch seconds).
func ConsumerARN(streamARN, consumer string, creation int64) string {
	return fmt.Sprintf("%s/consumer/%s:%d", streamARN, consumer, creation)
}

// ParseStreamARN splits a stream ARN into region, account and stream name.
func ParseStreamARN(arn string) (region, account, stream string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" {
		return "", "", "", fmt.Errorf("%q is not a Kinesis stream ARN", arn)
	}
	res, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok || res == "" || strings.Contains(res, "/") {
		return "", "", "", fmt.Errorf("%q is not a Kinesis stream ARN", arn)
	}
	return parts[3], parts[4], res, nil
}

// ShardID renders a shard index as AWS does: shardId-000000000007.
func ShardID(index int) string { return fmt.Sprintf("shardId-%012d", index) }

// ParseShardID returns the index of a shard id "shardId-NNNNNNNNNNNN".
func ParseShardID(id string) (int, bool) {
	digits, ok := strings.CutPrefix(id, "shardId-")
	if !ok || len(digits) == 0 || len(digits) > 12 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
		n = n*10 + int(digits[i]-'0')
	}
	return n, true
}
