package main

import (
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
)

// startIngest starts the ingest role: LIFT_INGEST_CONSUMERS consumers moving
// events from RabbitMQ into ClickHouse, and the dead-letter log. A consumer takes
// deliveries only while every ClickHouse shard has a replica that answers, so that a
// long outage leaves the backlog in the broker (docs/deploy.md, "A shard dies").
func (s *server) startIngest() error {
	sink, err := chsink.Open(s.cfg.ClickHouseAddr, s.cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	s.onClose(func() { sink.Close() })
	for range s.cfg.IngestConsumers {
		c := &amqpbus.Consumer{URL: s.cfg.AMQPURL, Sink: sink, Types: s.eventTypes, Log: s.log, Metrics: s.metrics,
			Privacy: s.privacy, Ready: s.chHealth.Available, BatchRows: s.cfg.IngestBatchRows, BatchWait: s.cfg.IngestBatchWait, Prefetch: s.cfg.IngestPrefetch}
		s.pipeline.Go(func() { c.Run(s.pipeCtx) })
	}
	// A copy of every dead letter is recorded for the dashboard; of all ingest
	// processes one records at a time (a single-active-consumer queue).
	deadLog := &amqpbus.DeadLetterLog{URL: s.cfg.AMQPURL, Sink: sink, Log: s.log, Privacy: s.privacy}
	s.pipeline.Go(func() { deadLog.Run(s.pipeCtx) })
	return nil
}
