package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/banditreport"
	"github.com/liftlab/lift/experiments/recommend"
	recpg "github.com/liftlab/lift/experiments/recommend/pgstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/ingest/typereg"
	segstore "github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/web/dashboard"
	"github.com/liftlab/lift/web/demo"
	"github.com/liftlab/lift/web/session"
)

// startPublishing starts what the api role publishes to RabbitMQ through: the
// publisher, the exposure log (exposures from /v1/decide) and the recommendation
// impression log. The logs flush through the publisher, so it stops after them.
func (s *server) startPublishing(ctx context.Context) {
	publisher := amqpbus.NewPublisher(s.cfg.AMQPURL, s.log, s.metrics)
	exposures := ingest.NewExposureLog(publisher, s.log, s.metrics, s.cfg.ExposureBuffer)
	impressions := recommend.NewImpressionLog(publisher, s.log, s.cfg.ExposureBuffer)
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	s.onClose(stopPub)
	s.pipeline.Go(func() { publisher.Run(pubCtx) })
	expDone, impDone := make(chan struct{}), make(chan struct{})
	go func() { exposures.Run(s.pipeCtx); close(expDone) }()
	go func() { impressions.Run(s.pipeCtx); close(impDone) }()
	s.pipeline.Go(func() { <-expDone; <-impDone; stopPub() })
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lift_exposure_buffer_length",
		Help: "Exposures from /v1/decide waiting to be published (LIFT_EXPOSURE_BUFFER is the most).",
	}, func() float64 { return float64(exposures.Buffered()) }))
	s.ready["rabbitmq"] = publisher.Ready
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := publisher.WaitConnected(waitCtx); err != nil {
		s.log.Warn("RabbitMQ not reachable yet; /v1/events answers 503 until it is", "err", err)
	}
	cancel()

	s.deps.Events, s.deps.EventMetrics, s.deps.Exposures = publisher, s.metrics, exposures
	s.deps.Impressions = impressions
	s.deps.EventsRate = float64(s.cfg.EventsRate)
	s.deps.Types, s.deps.EventTypes = s.eventTypes, typereg.NewService(s.typeStore)
}

// wireAPI fills in what the decision, SDK and management APIs serve.
func (s *server) wireAPI() {
	cfg, d := s.cfg, &s.deps
	d.Results = s.results
	d.Bandits = &banditreport.Service{Config: s.store, Weights: banditstore.New(s.pool)}
	d.SegmentStats = segstore.New(s.pool)
	d.Recommendations, d.RecommenderModels = s.models, recpg.New(s.pool)
	hooks := segstore.New(s.pool)
	hooks.WebhookGuard = s.webhookGuard
	d.Webhooks = hooks
	d.GDPR = &gdpr.Service{Jobs: s.gdprJobs, Events: s.gdprStore, Memberships: segstore.New(s.pool),
		Configuration: experiments.ConfigEraser{Store: s.store}, Subjects: s.subjects, Audit: s.gdprJobs,
		Pseudonymizer: s.privacy.Pseudonymizer}
	d.Retention = s.retention
	if cfg.DemoClientKey != "" {
		d.Demo = demo.Shop{ClientKey: cfg.DemoClientKey}
	}
}

// wireDashboard builds the dashboard (and dashboard sessions on /api/v1), which
// come with the management API.
func (s *server) wireDashboard() error {
	s.deps.Sessions = session.New(s.keyStore, s.keyStore, 0)
	// The live view reads recent rows from ClickHouse (lazily connected) and asks
	// RabbitMQ how many dead letters wait.
	feed, err := chsink.Open(s.cfg.ClickHouseAddr, s.cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	s.onClose(func() { feed.Close() })
	inspector := &amqpbus.QueueInspector{URL: s.cfg.AMQPURL}
	s.onClose(func() { inspector.Close() })
	db := dashboard.New(dashboard.Deps{Log: s.log, Config: experiments.NewService(s.store),
		Keys: s.keyStore, Users: s.keyStore, Sessions: s.deps.Sessions, Results: s.deps.Results,
		Bandits: s.deps.Bandits, EventTypes: s.typeStore, TypeCreator: typereg.NewService(s.typeStore), Members: s.members,
		Activity: segmentActivity{segstore.New(s.pool)}, Feed: feed, DeadQueue: deadQueue{inspector},
		Privacy: dashboardPrivacy{s.retention, s.deps.GDPR.(*gdpr.Service)}, PrivacyConfig: privacyConfig(s.privacy, s.cfg)})
	// The list and the experiment page read the same results, kept fresh here.
	s.pipeline.Go(func() { db.RefreshResults(s.pipeCtx) })
	s.deps.Dashboard = db
	return nil
}
