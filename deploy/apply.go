package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/ksp-project/ksp/deploy/cfn"
	"github.com/ksp-project/ksp/kds"
)

// KinesisAPI is the part of *kinesis.Client Apply uses.
type KinesisAPI interface {
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	CreateStream(context.Context, *kinesis.CreateStreamInput, ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error)
	IncreaseStreamRetentionPeriod(context.Context, *kinesis.IncreaseStreamRetentionPeriodInput, ...func(*kinesis.Options)) (*kinesis.IncreaseStreamRetentionPeriodOutput, error)
	DecreaseStreamRetentionPeriod(context.Context, *kinesis.DecreaseStreamRetentionPeriodInput, ...func(*kinesis.Options)) (*kinesis.DecreaseStreamRetentionPeriodOutput, error)
	StartStreamEncryption(context.Context, *kinesis.StartStreamEncryptionInput, ...func(*kinesis.Options)) (*kinesis.StartStreamEncryptionOutput, error)
	StopStreamEncryption(context.Context, *kinesis.StopStreamEncryptionInput, ...func(*kinesis.Options)) (*kinesis.StopStreamEncryptionOutput, error)
	UpdateStreamMode(context.Context, *kinesis.UpdateStreamModeInput, ...func(*kinesis.Options)) (*kinesis.UpdateStreamModeOutput, error)
	UpdateShardCount(context.Context, *kinesis.UpdateShardCountInput, ...func(*kinesis.Options)) (*kinesis.UpdateShardCountOutput, error)
	ListTagsForStream(context.Context, *kinesis.ListTagsForStreamInput, ...func(*kinesis.Options)) (*kinesis.ListTagsForStreamOutput, error)
	AddTagsToStream(context.Context, *kinesis.AddTagsToStreamInput, ...func(*kinesis.Options)) (*kinesis.AddTagsToStreamOutput, error)
	DescribeStreamConsumer(context.Context, *kinesis.DescribeStreamConsumerInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	RegisterStreamConsumer(context.Context, *kinesis.RegisterStreamConsumerInput, ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Change is what Apply did to one resource.
type Change struct {
	LogicalID string
	Type      string // AWS::Kinesis::Stream or AWS::Kinesis::StreamConsumer
	Name      string
	// Action is "created", "unchanged" or "updated: WHAT".
	Action string
}

func (c Change) String() string {
	return fmt.Sprintf("%-30s %-20s %s %s", c.Type, c.LogicalID, c.Name, c.Action)
}

// MergePlans joins the plans of several templates; a stream or consumer
// declared by two of them is an error.
func MergePlans(plans ...*cfn.Plan) (*cfn.Plan, error) {
	out := &cfn.Plan{}
	streams, consumers := map[string]bool{}, map[[2]string]bool{}
	for _, p := range plans {
		for _, s := range p.Streams {
			if streams[s.Name] {
				return nil, fmt.Errorf("deploy: stream %q (%s) is declared by two templates", s.Name, s.LogicalID)
			}
			streams[s.Name] = true
		}
		for _, c := range p.Consumers {
			k := [2]string{c.StreamName, c.Name}
			if consumers[k] {
				return nil, fmt.Errorf("deploy: consumer %q of stream %q (%s) is declared by two templates", c.Name, c.StreamName, c.LogicalID)
			}
			consumers[k] = true
		}
		out.Streams = append(out.Streams, p.Streams...)
		out.Consumers = append(out.Consumers, p.Consumers...)
		out.Skipped = append(out.Skipped, p.Skipped...)
	}
	return out, nil
}

// Apply makes the endpoint hold plan's streams and consumers. Before it
// creates anything it checks that every consumer's stream exists or is in
// the plan. An existing stream is brought to the plan's capacity mode,
// shard count, retention, encryption and tags (tags it does not name are
// kept); an existing consumer is left as it is. Apply waits for each
// stream and consumer to be ACTIVE; poll is the wait's interval (0: 1 s).
func Apply(ctx context.Context, client KinesisAPI, plan *cfn.Plan, poll time.Duration) ([]Change, error) {
	if poll <= 0 {
		poll = time.Second
	}
	a := applier{client: client, poll: poll}
	declared := map[string]bool{}
	existing := map[string]*types.StreamDescriptionSummary{}
	for _, s := range plan.Streams {
		declared[s.Name] = true
		d, err := a.describe(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		existing[s.Name] = d
	}
	for _, c := range plan.Consumers {
		if declared[c.StreamName] {
			continue
		}
		d, err := a.describe(ctx, c.StreamName)
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, fmt.Errorf("deploy: consumer %s: stream %q is neither in the templates nor on the endpoint", c.LogicalID, c.StreamName)
		}
	}
	var changes []Change
	for _, s := range plan.Streams {
		ch, err := a.stream(ctx, s, existing[s.Name])
		if err != nil {
			return changes, err
		}
		changes = append(changes, ch)
	}
	for _, c := range plan.Consumers {
		ch, err := a.consumer(ctx, c)
		if err != nil {
			return changes, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

type applier struct {
	client KinesisAPI
	poll   time.Duration
}

// describe returns the stream's summary, or nil when it does not exist.
func (a *applier) describe(ctx context.Context, name string) (*types.StreamDescriptionSummary, error) {
	out, err := a.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deploy: describe stream %q: %w", name, err)
	}
	return out.StreamDescriptionSummary, nil
}

// waitActive polls until the stream is ACTIVE and returns its summary.
func (a *applier) waitActive(ctx context.Context, name string) (*types.StreamDescriptionSummary, error) {
	for {
		d, err := a.describe(ctx, name)
		if err != nil {
			return nil, err
		}
		if d != nil && d.StreamStatus == types.StreamStatusActive {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("deploy: waiting for stream %q to be ACTIVE: %w", name, ctx.Err())
		case <-time.After(a.poll):
		}
	}
}

func (a *applier) stream(ctx context.Context, s cfn.Stream, d *types.StreamDescriptionSummary) (Change, error) {
	ch := Change{LogicalID: s.LogicalID, Type: "AWS::Kinesis::Stream", Name: s.Name, Action: "unchanged"}
	fail := func(op string, err error) (Change, error) {
		return ch, fmt.Errorf("deploy: stream %q (%s): %s: %w", s.Name, s.LogicalID, op, err)
	}
	name := aws.String(s.Name)
	if d == nil {
		in := &kinesis.CreateStreamInput{StreamName: name, StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamMode(s.Mode)}}
		if s.Mode == kds.StreamModeProvisioned {
			in.ShardCount = aws.Int32(int32(s.ShardCount))
		}
		if len(s.Tags) > 0 {
			in.Tags = s.Tags
		}
		if _, err := a.client.CreateStream(ctx, in); err != nil {
			return fail("create", err)
		}
		ch.Action = "created"
	}
	var updates []string
	d, err := a.waitActive(ctx, s.Name)
	if err != nil {
		return ch, err
	}
	if mode := types.StreamMode(s.Mode); d.StreamModeDetails == nil || d.StreamModeDetails.StreamMode != mode {
		if _, err := a.client.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: d.StreamARN, StreamModeDetails: &types.StreamModeDetails{StreamMode: mode}}); err != nil {
			return fail("update stream mode", err)
		}
		updates = append(updates, "mode "+string(mode))
		if d, err = a.waitActive(ctx, s.Name); err != nil {
			return ch, err
		}
	}
	if s.Mode == kds.StreamModeProvisioned && int(aws.ToInt32(d.OpenShardCount)) != s.ShardCount {
		if _, err := a.client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(int32(s.ShardCount)), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
			return fail("update shard count", err)
		}
		updates = append(updates, fmt.Sprintf("shards %d→%d", aws.ToInt32(d.OpenShardCount), s.ShardCount))
		if d, err = a.waitActive(ctx, s.Name); err != nil {
			return ch, err
		}
	}
	if have := int(aws.ToInt32(d.RetentionPeriodHours)); have != s.RetentionHours {
		hours := aws.Int32(int32(s.RetentionHours))
		if have < s.RetentionHours {
			_, err = a.client.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: hours})
		} else {
			_, err = a.client.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: hours})
		}
		if err != nil {
			return fail("change retention", err)
		}
		updates = append(updates, fmt.Sprintf("retention %dh→%dh", have, s.RetentionHours))
		if d, err = a.waitActive(ctx, s.Name); err != nil {
			return ch, err
		}
	}
	haveKMS := d.EncryptionType == types.EncryptionTypeKms
	encrypting := len(updates)
	switch {
	case s.Encryption == kds.EncryptionKMS && (!haveKMS || aws.ToString(d.KeyId) != s.KeyID):
		if _, err := a.client.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String(s.KeyID)}); err != nil {
			return fail("start encryption", err)
		}
		updates = append(updates, "encryption KMS "+s.KeyID)
	case s.Encryption != kds.EncryptionKMS && haveKMS:
		if _, err := a.client.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: d.KeyId}); err != nil {
			return fail("stop encryption", err)
		}
		updates = append(updates, "encryption NONE")
	}
	if len(updates) > encrypting {
		if _, err = a.waitActive(ctx, s.Name); err != nil {
			return ch, err
		}
	}
	if len(s.Tags) > 0 {
		out, err := a.client.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: name})
		if err != nil {
			return fail("list tags", err)
		}
		have := map[string]string{}
		for _, t := range out.Tags {
			have[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		missing := map[string]string{}
		for k, v := range s.Tags {
			if hv, ok := have[k]; !ok || hv != v {
				missing[k] = v
			}
		}
		if len(missing) > 0 {
			if _, err := a.client.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: missing}); err != nil {
				return fail("tag", err)
			}
			updates = append(updates, fmt.Sprintf("%d tags", len(missing)))
		}
	}
	if len(updates) > 0 && ch.Action == "unchanged" {
		ch.Action = fmt.Sprintf("updated: %v", updates)
	}
	return ch, nil
}

func (a *applier) consumer(ctx context.Context, c cfn.Consumer) (Change, error) {
	ch := Change{LogicalID: c.LogicalID, Type: "AWS::Kinesis::StreamConsumer", Name: c.StreamName + "/" + c.Name, Action: "unchanged"}
	// The stream's real ARN (the template's is built from the region and
	// account it was resolved with).
	d, err := a.describe(ctx, c.StreamName)
	if err != nil {
		return ch, err
	}
	if d == nil {
		return ch, fmt.Errorf("deploy: consumer %s: stream %q does not exist", c.LogicalID, c.StreamName)
	}
	in := &kinesis.DescribeStreamConsumerInput{StreamARN: d.StreamARN, ConsumerName: aws.String(c.Name)}
	for {
		out, err := a.client.DescribeStreamConsumer(ctx, in)
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf) && ch.Action == "unchanged":
			reg := &kinesis.RegisterStreamConsumerInput{StreamARN: d.StreamARN, ConsumerName: aws.String(c.Name)}
			if len(c.Tags) > 0 {
				reg.Tags = maps.Clone(c.Tags)
			}
			if _, err := a.client.RegisterStreamConsumer(ctx, reg); err != nil {
				return ch, fmt.Errorf("deploy: consumer %s: register %q: %w", c.LogicalID, c.Name, err)
			}
			ch.Action = "created"
			continue
		case err != nil && !errors.As(err, &nf):
			return ch, fmt.Errorf("deploy: consumer %s: describe %q: %w", c.LogicalID, c.Name, err)
		case err == nil && out.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive:
			return ch, nil
		}
		select {
		case <-ctx.Done():
			return ch, fmt.Errorf("deploy: waiting for consumer %q to be ACTIVE: %w", c.Name, ctx.Err())
		case <-time.After(a.poll):
		}
	}
}
