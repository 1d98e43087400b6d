package esm

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
)

func noop(context.Context, events.KinesisEvent) error { return nil }
