package cfn

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/ksp-project/ksp/kds"
)

const (
	typeStream   = "AWS::Kinesis::Stream"
	typeConsumer = "AWS::Kinesis::StreamConsumer"
)

// MaxShardCount is the largest ShardCount Resolve accepts (an account's
// shard quota may be lower; the endpoint then refuses the stream).
const MaxShardCount = 100000

// Plan is what a template asks ksp to create.
type Plan struct {
	Streams   []Stream
	Consumers []Consumer
	Skipped   []Skipped
}

// Stream is an AWS::Kinesis::Stream.
type Stream struct {
	LogicalID      string
	Name           string
	ARN            string
	Mode           kds.StreamMode
	ShardCount     int // PROVISIONED only
	RetentionHours int
	Encryption     kds.EncryptionType
	KeyID          string
	Tags           map[string]string
}

// Consumer is an AWS::Kinesis::StreamConsumer.
type Consumer struct {
	LogicalID  string
	Name       string
	StreamARN  string
	StreamName string
	Tags       map[string]string
}

// Skipped is a resource ksp does not create.
type Skipped struct {
	LogicalID, Type, Reason string
}

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// Resolve evaluates the template's parameters, conditions and Kinesis
// resources against env and validates every property; it returns the
// first problem found, before anything is created.
func (t *Template) Resolve(env Env) (*Plan, error) {
	e, err := newEvaluator(t, env)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(t.Conditions) {
		if _, err := e.condition(name, "condition "+name); err != nil {
			return nil, err
		}
	}
	plan := &Plan{}
	var active []Resource
	for _, r := range t.Resources {
		if r.Condition != "" {
			on, err := e.condition(r.Condition, "resource "+r.LogicalID)
			if err != nil {
				return nil, err
			}
			if !on {
				plan.Skipped = append(plan.Skipped, Skipped{r.LogicalID, r.Type, "condition " + r.Condition + " is false"})
				continue
			}
		}
		if r.Type != typeStream && r.Type != typeConsumer {
			plan.Skipped = append(plan.Skipped, Skipped{r.LogicalID, r.Type, "ksp creates only Kinesis streams and consumers"})
			continue
		}
		active = append(active, r)
	}
	// Streams first: their names and ARNs are what consumers refer to.
	names := map[string]string{}
	for _, r := range active {
		if r.Type != typeStream {
			continue
		}
		p := props{e: e, r: r}
		name := p.str("Name", e.env.StackName+"-"+r.LogicalID)
		if p.err != nil {
			return nil, p.err
		}
		if err := p.checkName("Name", name); err != nil {
			return nil, err
		}
		if other, dup := names[name]; dup {
			return nil, p.fail("Name", "stream %q is also declared by %s", name, other)
		}
		names[name] = r.LogicalID
		arn := kds.StreamARN(e.env.Region, e.env.Account, name)
		e.refs[r.LogicalID] = name
		e.attrs[r.LogicalID] = map[string]string{"Arn": arn}
	}
	consumers := map[[2]string]string{}
	for _, r := range active {
		p := props{e: e, r: r}
		switch r.Type {
		case typeStream:
			s, err := p.stream()
			if err != nil {
				return nil, err
			}
			plan.Streams = append(plan.Streams, s)
		case typeConsumer:
			c, err := p.consumer()
			if err != nil {
				return nil, err
			}
			key := [2]string{c.StreamARN, c.Name}
			if other, dup := consumers[key]; dup {
				return nil, p.fail("ConsumerName", "consumer %q of %s is also declared by %s", c.Name, c.StreamName, other)
			}
			consumers[key] = r.LogicalID
			plan.Consumers = append(plan.Consumers, c)
		}
	}
	return plan, nil
}

// props reads one resource's properties; the first error sticks.
type props struct {
	e    *evaluator
	r    Resource
	err  error
	seen map[string]bool
}

func (p *props) fail(prop, format string, args ...any) error {
	if p.err == nil {
		p.err = errorf(fmt.Sprintf("resource %s (%s) property %s", p.r.LogicalID, p.r.Type, prop), format, args...)
	}
	return p.err
}

func (p *props) get(prop string) (any, bool) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.seen[prop] = true
	raw, ok := p.r.Properties[prop]
	if !ok || p.err != nil {
		return nil, false
	}
	v, err := p.e.eval(raw, "resource "+p.r.LogicalID+" property "+prop)
	if err != nil {
		if p.err == nil {
			p.err = err
		}
		return nil, false
	}
	if _, drop := v.(noValue); drop {
		return nil, false
	}
	return v, true
}

func (p *props) str(prop, def string) string {
	v, ok := p.get(prop)
	if !ok {
		return def
	}
	s, ok := scalar(v)
	if !ok {
		p.fail(prop, "%s is not a string", show(v))
	}
	return s
}

func (p *props) integer(prop string, def, min, max int) int {
	v, ok := p.get(prop)
	if !ok {
		return def
	}
	s, _ := scalar(v)
	n, err := strconv.Atoi(s)
	if err != nil {
		p.fail(prop, "%s is not an integer", show(v))
		return def
	}
	if n < min || n > max {
		p.fail(prop, "%d is out of range %d..%d", n, min, max)
	}
	return n
}

func (p *props) tags() map[string]string {
	v, ok := p.get("Tags")
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		p.fail("Tags", "not a list of {Key, Value}")
		return nil
	}
	if len(list) > 50 {
		p.fail("Tags", "%d tags; at most 50", len(list))
	}
	tags := map[string]string{}
	for _, t := range list {
		m, ok := t.(map[string]any)
		k, ok1 := scalar(m["Key"])
		val, ok2 := scalar(m["Value"])
		if !ok || !ok1 || !ok2 || len(m) != 2 {
			p.fail("Tags", "%s is not a {Key, Value} pair of strings", show(t))
			return nil
		}
		if len(k) < 1 || len(k) > 128 || len(val) > 256 {
			p.fail("Tags", "tag %q: keys are 1..128 characters, values at most 256", k)
		}
		tags[k] = val
	}
	return tags
}

// unknown reports a property Resolve does not know, so a misspelt one is
// not silently ignored.
func (p *props) unknown(ignored ...string) error {
	keys := make([]string, 0, len(p.r.Properties))
	for k := range p.r.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !p.seen[k] && !contains(ignored, k) {
			return p.fail(k, "unknown property")
		}
	}
	return p.err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *props) checkName(prop, name string) error {
	if len(name) < 1 || len(name) > kds.MaxStreamNameLength || !namePattern.MatchString(name) {
		return p.fail(prop, "%q must be 1..%d characters of a-z, A-Z, 0-9, _ . -", name, kds.MaxStreamNameLength)
	}
	return nil
}

func (p *props) stream() (Stream, error) {
	s := Stream{LogicalID: p.r.LogicalID, Name: p.e.refs[p.r.LogicalID], ARN: p.e.attrs[p.r.LogicalID]["Arn"]}
	p.seen = map[string]bool{"Name": true}
	s.Mode = kds.StreamModeProvisioned
	if v, ok := p.get("StreamModeDetails"); ok {
		m, _ := v.(map[string]any)
		mode, _ := scalar(m["StreamMode"])
		switch kds.StreamMode(mode) {
		case kds.StreamModeProvisioned, kds.StreamModeOnDemand:
			s.Mode = kds.StreamMode(mode)
		default:
			return s, p.fail("StreamModeDetails", "StreamMode %s is not PROVISIONED or ON_DEMAND", show(m["StreamMode"]))
		}
	}
	_, hasShards := p.r.Properties["ShardCount"]
	s.ShardCount = p.integer("ShardCount", 1, 1, MaxShardCount)
	if s.Mode == kds.StreamModeOnDemand {
		if hasShards {
			return s, p.fail("ShardCount", "an ON_DEMAND stream takes no ShardCount")
		}
		s.ShardCount = 0
	}
	s.RetentionHours = p.integer("RetentionPeriodHours", kds.DefaultRetentionHours, kds.MinRetentionHours, kds.MaxRetentionHours)
	s.Encryption = kds.EncryptionNone
	if v, ok := p.get("StreamEncryption"); ok {
		m, _ := v.(map[string]any)
		typ, _ := scalar(m["EncryptionType"])
		key, okKey := scalar(m["KeyId"])
		switch {
		case typ != string(kds.EncryptionKMS):
			return s, p.fail("StreamEncryption", "EncryptionType %s is not KMS", show(m["EncryptionType"]))
		case !okKey || key == "" || len(key) > 2048:
			return s, p.fail("StreamEncryption", "KeyId %s must be 1..2048 characters", show(m["KeyId"]))
		}
		s.Encryption, s.KeyID = kds.EncryptionKMS, key
	}
	s.Tags = p.tags()
	// Accepted, not applied: the server has no use for them.
	return s, p.unknown("DesiredShardLevelMetrics", "MaxRecordSizeInKiB", "WarmThroughputMiBps")
}

func (p *props) consumer() (Consumer, error) {
	c := Consumer{LogicalID: p.r.LogicalID}
	c.Name = p.str("ConsumerName", "")
	if p.err != nil {
		return c, p.err
	}
	if _, ok := p.r.Properties["ConsumerName"]; !ok {
		return c, p.fail("ConsumerName", "required")
	}
	if err := p.checkName("ConsumerName", c.Name); err != nil {
		return c, err
	}
	c.StreamARN = p.str("StreamARN", "")
	if p.err != nil {
		return c, p.err
	}
	region, account, name, err := kds.ParseStreamARN(c.StreamARN)
	if err != nil {
		return c, p.fail("StreamARN", "%v", err)
	}
	if region != p.e.env.Region || account != p.e.env.Account {
		return c, p.fail("StreamARN", "%q is in %s/%s, not in the endpoint's region and account %s/%s", c.StreamARN, region, account, p.e.env.Region, p.e.env.Account)
	}
	c.StreamName = name
	c.Tags = p.tags()
	return c, p.unknown()
}
