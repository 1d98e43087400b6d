package server

import (
	"slices"
	"strings"
)

// Enhanced (shard-level) monitoring is accepted and reported; ksp emits no
// CloudWatch metrics (use the metrics hooks instead).

// shardLevelMetrics are the metric names, in the order ksp reports them.
// "ALL" in a request stands for every one of them.
var shardLevelMetrics = []string{
	"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
	"IteratorAgeMilliseconds",
}

type enhancedMonitoringInput struct {
	streamRef
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

func (r *enhancedMonitoringInput) validate(v *validator) {
	r.streamRef.validate(v)
	if !v.notNull("shardLevelMetrics", r.ShardLevelMetrics != nil) {
		return
	}
	list := "[" + strings.Join(r.ShardLevelMetrics, ", ") + "]"
	switch n := len(r.ShardLevelMetrics); {
	case n < 1:
		v.fail(list, true, "shardLevelMetrics", "have length greater than or equal to 1")
	case n > 7:
		v.fail(list, true, "shardLevelMetrics", "have length less than or equal to 7")
	}
	enum := append(slices.Clone(shardLevelMetrics), "ALL")
	for _, m := range r.ShardLevelMetrics {
		if !slices.Contains(enum, m) {
			v.fail(list, true, "shardLevelMetrics", "satisfy constraint: [Member must satisfy enum value set: ["+strings.Join(enum, ", ")+"]]")
			break
		}
	}
}

type enhancedMonitoringOutput struct {
	StreamName               string   `json:"StreamName"`
	StreamARN                string   `json:"StreamARN"`
	CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
	DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
}

func enableEnhancedMonitoring(s *Server, c *call) (any, error) {
	return changeMonitoring(s, c, true)
}

func disableEnhancedMonitoring(s *Server, c *call) (any, error) {
	return changeMonitoring(s, c, false)
}

// changeMonitoring adds (enable) or removes the requested metrics and
// answers the set before (Current) and after (Desired) the change.
func changeMonitoring(s *Server, c *call, enable bool) (any, error) {
	req, err := decodeRequest[enhancedMonitoringInput](c)
	if err != nil {
		return nil, err
	}
	asked := slices.Contains(req.ShardLevelMetrics, "ALL")
	var out enhancedMonitoringOutput
	_, err = s.updateStream(req.streamRef, func(st *stream, set *streamSettings) error {
		out.StreamName, out.StreamARN = st.name, st.arn
		out.CurrentShardLevelMetrics = append([]string{}, set.monitoring...)
		next := []string{}
		for _, m := range shardLevelMetrics {
			has := slices.Contains(set.monitoring, m)
			named := asked || slices.Contains(req.ShardLevelMetrics, m)
			if enable && (has || named) || !enable && has && !named {
				next = append(next, m)
			}
		}
		set.monitoring = next
		out.DesiredShardLevelMetrics = append([]string{}, next...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
