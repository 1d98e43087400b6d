package autoscale

import (
	"fmt"
	"time"
)

// Rules are the limits AWS puts on UpdateShardCount (an account's
// defaults; raise them only when AWS raised yours).
type Rules struct {
	// CallsPer24h is how many UpdateShardCount calls one stream may have in
	// any rolling 24 hours. AWS: 10.
	CallsPer24h int
	// MaxShardsPerStream is the most shards one stream may be scaled up to;
	// a stream above it may only scale down to fewer. AWS: 10,000.
	MaxShardsPerStream int
}

// DefaultRules are AWS's default UpdateShardCount limits.
func DefaultRules() Rules { return Rules{CallsPer24h: 10, MaxShardsPerStream: 10000} }

// proposal is one UpdateShardCount call being considered.
type proposal struct {
	current, target int
	// accountOpen and accountLimit are the account's open shards and shard
	// quota in the region (DescribeLimits); limit 0: unknown.
	accountOpen, accountLimit int
	calls                     []time.Time // past calls on the stream
	now                       time.Time
}

// rule is one of UpdateShardCount's limits. apply narrows p.target towards
// p.current to what the rule allows, or returns why no call may be made now.
type rule struct {
	name  string
	apply func(r Rules, p *proposal) (refused string)
}

// rules are every limit, each encoded once; limit applies them in order.
var rules = []rule{
	{"at most double", func(_ Rules, p *proposal) string {
		p.target = min(p.target, 2*p.current)
		return ""
	}},
	{"at least half", func(_ Rules, p *proposal) string {
		p.target = max(p.target, (p.current+1)/2)
		return ""
	}},
	{"max shards per stream", func(r Rules, p *proposal) string {
		if p.target > p.current && p.target > r.MaxShardsPerStream {
			p.target = max(p.current, r.MaxShardsPerStream)
		}
		return ""
	}},
	{"scale down from above the max", func(r Rules, p *proposal) string {
		if p.current > r.MaxShardsPerStream && p.target < p.current && p.target >= r.MaxShardsPerStream {
			return fmt.Sprintf("a stream above %d shards may only scale down to fewer than %d, not %d", r.MaxShardsPerStream, r.MaxShardsPerStream, p.target)
		}
		return ""
	}},
	{"account shard quota", func(_ Rules, p *proposal) string {
		if p.accountLimit > 0 && p.target > p.current {
			p.target = min(p.target, p.current+max(0, p.accountLimit-p.accountOpen))
		}
		return ""
	}},
	{"10 calls per second", func(_ Rules, p *proposal) string {
		// The limit is per account; one scaler's own calls are what it can
		// know, and they stay under it.
		if n := len(p.calls); n > 0 && p.now.Sub(p.calls[n-1]) < 100*time.Millisecond {
			return fmt.Sprintf("the last call was %v ago; UpdateShardCount allows 10 calls per second", p.now.Sub(p.calls[n-1]))
		}
		return ""
	}},
	{"calls per rolling 24 hours", func(r Rules, p *proposal) string {
		since := p.now.Add(-24 * time.Hour)
		var in []time.Time
		for _, c := range p.calls {
			if c.After(since) {
				in = append(in, c)
			}
		}
		if len(in) >= r.CallsPer24h {
			return fmt.Sprintf("%d UpdateShardCount calls in the last 24 hours, %d allowed; the next is allowed at %s",
				len(in), r.CallsPer24h, in[len(in)-r.CallsPer24h].Add(24*time.Hour).UTC().Format(time.RFC3339))
		}
		return ""
	}},
}

// limit returns the target closest to p.target that every rule allows,
// or why no call may be made; target == p.current means no call.
func (r Rules) limit(p proposal) (target int, refused string) {
	for _, rl := range rules {
		if why := rl.apply(r, &p); why != "" {
			return p.current, rl.name + ": " + why
		}
	}
	return p.target, ""
}

func (r Rules) validate() error {
	if r.CallsPer24h < 1 {
		return fmt.Errorf("autoscale: Rules.CallsPer24h %d must be at least 1", r.CallsPer24h)
	}
	if r.MaxShardsPerStream < 1 {
		return fmt.Errorf("autoscale: Rules.MaxShardsPerStream %d must be at least 1", r.MaxShardsPerStream)
	}
	return nil
}
