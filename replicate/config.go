package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ksp-project/ksp/consumer"
	"github.com/ksp-project/ksp/lease"
	"github.com/ksp-project/ksp/producer"
)

// Config configures Run.
type Config struct {
	// From is the source stream's name. Required.
	From string
	// Source is the source stream's Kinesis client. Required.
	Source consumer.KinesisAPI
	// Leases is the replicator's lease table, shared by every worker that
	// replicates From into To (the table's name is the application's name).
	// Required.
	Leases lease.Store
	// To is the destination stream's name. Required.
	To string
	// Destination is the destination stream's Kinesis client. Required.
	Destination producer.Client

	// Transform, when set, is applied to each record before it is sent:
	// it returns the record to put, or keep false to drop it (a filter). An
	// error fails the batch, which is delivered again after a back-off.
	// Default: the record as it is, with its partition key and explicit hash
	// key. It is called from one goroutine per source shard.
	Transform Transform

	// MaxInFlight is how many records of one source shard may be sent and
	// not yet acknowledged; the acknowledged prefix is checkpointed every
	// MaxInFlight records and at the end of each batch. It bounds what a
	// crash sends twice, per shard. Default DefaultMaxInFlight.
	MaxInFlight int

	// ConsumerOptions configure the source consumer (worker id, failover
	// time, polling, fan-out, hooks...). The stream, client, lease store and
	// processor are Run's. Default initial position: TrimHorizon.
	ConsumerOptions []consumer.Option
	// ProducerOptions configure the destination producer (aggregation,
	// rate limit, TTL, hooks...). StrictOrdering is always on.
	ProducerOptions []producer.Option
	// Hooks are values implementing one or more of the Hook* interfaces.
	Hooks []Hook
	// Logger receives the replicator's logs (nil: discard).
	Logger *slog.Logger
}

// DefaultMaxInFlight is Config.MaxInFlight's default.
const DefaultMaxInFlight = 1000

// Transform turns a source record into the record to put at the
// destination; keep false drops it. r.Data is the replicator's own copy:
// the returned record may keep it, and must not be changed afterwards.
type Transform func(ctx context.Context, r consumer.Record) (out producer.Record, keep bool, err error)

// Identity is the default Transform: the same data, partition key and
// explicit hash key.
func Identity(_ context.Context, r consumer.Record) (producer.Record, bool, error) {
	return producer.Record{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}, true, nil
}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("replicate: "+format, args...)) }
	if c.From == "" {
		bad("no source stream: Config.From is required")
	}
	if c.Source == nil {
		bad("no source client: Config.Source is required")
	}
	if c.Leases == nil {
		bad("no lease store: Config.Leases is required")
	}
	if c.To == "" {
		bad("no destination stream: Config.To is required")
	}
	if c.Destination == nil {
		bad("no destination client: Config.Destination is required")
	}
	if c.MaxInFlight < 0 {
		bad("MaxInFlight %d is negative", c.MaxInFlight)
	}
	for i, h := range c.Hooks {
		if !isHook(h) {
			bad("hook %d (%T) implements no Hook interface", i, h)
		}
	}
	return errors.Join(errs...)
}
