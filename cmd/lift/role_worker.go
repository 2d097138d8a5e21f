package main

import (
	"context"
	"time"

	"github.com/liftlab/lift/bandit"
	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/feeds"
	"github.com/liftlab/lift/experiments/recommend"
	recch "github.com/liftlab/lift/experiments/recommend/chstore"
	recpg "github.com/liftlab/lift/experiments/recommend/pgstore"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/leader"
	"github.com/liftlab/lift/segments/amqprunner"
	segchsink "github.com/liftlab/lift/segments/chsink"
	segstore "github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/segments/webhooks"
)

// startWorker starts the worker role's engines. Any number of processes may run
// the role; a leader election (internal/leader) keeps each singleton job to one
// process at a time, and the segment engine's shards are shared among them.
func (s *server) startWorker() error {
	cfg, log, pool := s.cfg, s.log, s.pool
	wm := newWorkerMetrics(s.reg)
	// lead runs job while this process holds the named lock.
	lead := func(name string, job func(context.Context)) {
		elector := &leader.Elector{ConnString: cfg.PostgresURL, Name: name, Log: log, OnChange: wm.leading(name)}
		s.pipeline.Go(func() { elector.Run(s.pipeCtx, job) })
	}

	bandits := &feeds.Bandits{Config: s.store, Events: s.results.Events, Results: s.results}
	updater := &bandit.Updater{Source: bandits, Publisher: banditstore.New(pool), Log: log,
		Config: bandit.DefaultConfig(), Observe: wm.banditRound}
	lead("lift.bandit-updater", updater.Run)

	// The segment engine: a router (one leader) splits lift.segments into a stream
	// per shard; the worker processes share the shards (an advisory lock each) and
	// run one engine per shard they own. Every enter and exit also goes to
	// ClickHouse segment_changes, and rebuilds read ClickHouse events (lazy
	// connection: while ClickHouse is down the log waits and rebuilds retry).
	chSegments, err := segchsink.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	router := &amqprunner.Router{URL: cfg.AMQPURL, Shards: cfg.SegmentShards, Store: segstore.New(pool), Log: log, Privacy: s.privacy}
	// The router's lock keeps the name of the single engine it replaced, which the
	// dashboards and alerts know (lift_leader{name="lift.segment-engine"}).
	lead("lift.segment-engine", router.Run)
	definitions := feeds.SegmentDefinitions(s.store)
	var history amqprunner.History = chSegments
	if !cfg.SegmentRebuild {
		history = nil // new and changed segments start from the live events
	}
	shards := &segstore.Shards{ConnString: cfg.PostgresURL, Count: cfg.SegmentShards, Log: log,
		Shard: func(ctx context.Context, shard int, owner int32) {
			wm.segmentShard(shard, true)
			defer wm.segmentShard(shard, false)
			runner := &amqprunner.Runner{URL: cfg.AMQPURL, Store: segstore.New(pool), Changes: chSegments, History: history,
				Features: segstore.New(pool), FeatureLog: chSegments,
				Definitions: definitions, Log: log, Shard: shard, Shards: cfg.SegmentShards, Owner: owner,
				RebuildDelay: cfg.SegmentRebuildDelay, Observe: wm.segmentEngine, Erasures: segstore.New(pool)}
			runner.Run(ctx)
		}}
	s.pipeline.Go(func() { shards.Run(s.pipeCtx); chSegments.Close() })

	// Erasure jobs: one runner at a time; a job resumes from its saved progress
	// under whichever process leads next.
	erasures := &gdpr.Runner{Jobs: s.gdprJobs, Events: s.gdprStore, Memberships: segstore.New(pool),
		Segments: &segstore.SegmentEraser{Store: segstore.New(pool), Definitions: definitions, StaleAfter: time.Minute},
		Webhooks: segstore.New(pool), Configuration: experiments.ConfigEraser{Store: s.store}, Subjects: s.subjects, Log: log, Poll: cfg.ErasurePoll}
	lead("lift.erasure", erasures.Run)

	// Recommenders: one trainer at a time, reading ClickHouse events (lazily
	// connected) and saving models to Postgres.
	trainingData, err := recch.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	s.onClose(func() { trainingData.Close() })
	trainer := &recommend.Trainer{Recommenders: feeds.RecommenderSpecs(s.store), Source: trainingData, Store: recpg.New(pool), Log: log}
	lead("lift.recommender-trainer", trainer.Run)
	lead("lift.retention", s.retention.Run)

	// Webhook deliveries: every worker process drains the outbox (claims are leased,
	// so they share it); every connection is checked against the allowed networks.
	dispatcher := &webhooks.Dispatcher{Store: segstore.New(pool).Outbox(), Guard: s.webhookGuard,
		Log: log, Metrics: webhooks.NewMetrics(s.reg)}
	s.pipeline.Go(func() { dispatcher.Run(s.pipeCtx) })
	return nil
}
