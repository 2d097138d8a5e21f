package amqprunner

import (
	"errors"
	"fmt"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest/amqpbus"
)

// ShardQueue names the stream holding shard i's events: lift.segments.<i>.
func ShardQueue(shard int) string { return amqpbus.SegmentsQueue + "." + strconv.Itoa(shard) }

// shardsHeader carries, in every message of a shard stream, the shard count the
// router split the users with: an engine configured with another count must not read
// it (its users would be split differently).
const shardsHeader = "x-lift-shards"

func declareShard(ch *amqp.Channel, shard int) error {
	if _, err := ch.QueueDeclare(ShardQueue(shard), true, false, false, false, amqpbus.SegmentsStreamArgs); err != nil {
		return fmt.Errorf("amqprunner: declare %s: %w", ShardQueue(shard), err)
	}
	return nil
}

// ConvertSegmentsQueue makes lift.segments the stream this version reads, replacing
// the quorum queue earlier versions declared (lift migrate runs it). The events that
// queue held are dropped: the segment engine rebuilds its state from ClickHouse. It
// reports whether it converted anything.
func ConvertSegmentsQueue(url string) (bool, error) {
	conn, err := amqpbus.Dial(url)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	err = amqpbus.Declare(ch)
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.PreconditionFailed {
		return false, err // declared as it should be, or another failure
	}
	// The failed declaration closed the channel.
	if ch, err = conn.Channel(); err != nil {
		return false, err
	}
	if _, err := ch.QueueDelete(amqpbus.SegmentsQueue, false, false, false); err != nil {
		return false, fmt.Errorf("amqprunner: delete the old %s: %w", amqpbus.SegmentsQueue, err)
	}
	if err := amqpbus.Declare(ch); err != nil {
		return false, err
	}
	return true, nil
}
