package sink

import (
	"context"
	"fmt"

	"github.com/ksp-project/ksp/producer"
)

// Producer puts each message into a stream through the ksp producer
// (batched with other puts, retried, rate-limited per shard), partitioned by
// the message's Key. The caller owns the producer and closes it.
type Producer struct {
	p *producer.Producer
}

// NewProducer puts through p.
func NewProducer(p *producer.Producer) *Producer { return &Producer{p: p} }

// MaxSize is a Kinesis record's default limit less the longest partition
// key; the producer refuses records over the stream's own limit too.
func (s *Producer) MaxSize() int { return MaxKinesisRecord - 256 }

// Send puts m and waits for its result: it succeeds once Kinesis
// acknowledged the record.
func (s *Producer) Send(ctx context.Context, m Message) error {
	if err := checkSize(s.p.Stream(), m, s.MaxSize()); err != nil {
		return err
	}
	if _, err := s.p.PutSync(ctx, producer.Record{PartitionKey: partitionKey(m.Key), Data: m.Body}); err != nil {
		return fmt.Errorf("sink: putting into %s: %w", s.p.Stream(), err)
	}
	return nil
}
