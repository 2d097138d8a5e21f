package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/liftlab/lift/bandit"
	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/banditreport"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/experiments/recommend"
	recch "github.com/liftlab/lift/experiments/recommend/chstore"
	recpg "github.com/liftlab/lift/experiments/recommend/pgstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/ingest/gdpr"
	gdprch "github.com/liftlab/lift/ingest/gdpr/chstore"
	gdprpg "github.com/liftlab/lift/ingest/gdpr/pgstore"
	ingestpg "github.com/liftlab/lift/ingest/pgstore"
	"github.com/liftlab/lift/ingest/typereg"
	"github.com/liftlab/lift/internal/config"
	"github.com/liftlab/lift/internal/leader"
	"github.com/liftlab/lift/internal/logctx"
	"github.com/liftlab/lift/segments/amqprunner"
	segchsink "github.com/liftlab/lift/segments/chsink"
	segstore "github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/segments/webhooks"
	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
	authstore "github.com/liftlab/lift/web/auth/pgstore"
	"github.com/liftlab/lift/web/dashboard"
	"github.com/liftlab/lift/web/demo"
	"github.com/liftlab/lift/web/session"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(logctx.Handler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(logctx.Handler(slog.NewJSONHandler(w, opts)))
}

// serve runs the server until ctx is cancelled, then drains in-flight requests.
// The api role serves decisions, OFREP and the management API; every role serves
// /healthz, /readyz and /metrics (on LIFT_ADMIN_ADDR instead when that is set). The api role also runs the event collector and
// the exposure log (publishing to RabbitMQ); the ingest role runs the consumers that
// move events into ClickHouse; all runs both. The worker role gets its work from the
// bandit and segment components as those are added.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "all", "all, api, ingest or worker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *role {
	case "all", "api", "ingest", "worker":
	default:
		return fmt.Errorf("--role: want all, api, ingest or worker, got %q", *role)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr).With("role", *role)
	log.Info("starting lift", "config", cfg)
	// Webhook URLs are checked against it when saved and every delivery's
	// connection when dialled.
	webhookGuard := &webhooks.Guard{Allow: cfg.WebhookAllowNets}

	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	store := pgstore.New(pool)
	keyStore := authstore.New(pool)
	live := experiments.NewLive(store)
	// Behavioural segment memberships follow the segment engine's table, change by
	// change, so /v1/decide reads them from memory.
	members := experiments.NewMemberSet()
	live.Members = members
	// So do users' features (docs/recommendations.md).
	features := experiments.NewFeatureSet()
	live.FeatureValues = features
	keys := auth.NewKeyRing(keyStore)
	typeStore := ingestpg.New(pool)
	eventTypes := typereg.New(typeStore)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	snapshotAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lift_snapshot_age_seconds",
		Help: "Seconds since the decision snapshot was loaded from Postgres.",
	}, func() float64 { return time.Since(live.Snapshot().LoadedAt).Seconds() })
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lift_snapshot_reloads_total",
		Help: "Snapshot reload attempts by outcome.",
	}, []string{"outcome"})
	reloads.WithLabelValues("ok")
	reloads.WithLabelValues("error")
	reg.MustRegister(snapshotAge, reloads, snapshotInfo{live})

	// Load once before listening so the first requests see the configuration; if
	// Postgres is down the watcher keeps trying and /readyz says so meanwhile.
	loadCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	for _, r := range []pgstore.Reloader{live, keys, eventTypes} {
		if err := r.Reload(loadCtx); err != nil {
			log.Warn("initial configuration load failed; will retry", "err", err)
		}
	}
	cancel()
	watcher := &pgstore.Watcher{
		ConnString: cfg.PostgresURL,
		Resync:     cfg.Resync,
		Log:        log,
		Reloaders:  []pgstore.Reloader{live, keys, eventTypes},
		OnReload: func(err error) {
			if err != nil {
				reloads.WithLabelValues("error").Inc()
			} else {
				reloads.WithLabelValues("ok").Inc()
			}
		},
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watcher.Run(watchCtx)
	if *role == "all" || *role == "api" {
		go segstore.New(pool).Follow(watchCtx, cfg.PostgresURL, members, time.Second, log)
		go segstore.New(pool).FollowFeatures(watchCtx, cfg.PostgresURL, features, time.Second, log)
	}
	// Every decision process holds the newest model of each recommender, loaded
	// when the trainer saves one.
	models := recommend.NewModels(recpg.New(pool))
	if *role == "all" || *role == "api" {
		go recpg.Follow(watchCtx, cfg.PostgresURL, models, cfg.Resync, log)
	}

	ingestMetrics := ingest.NewMetrics(reg)
	privacy, err := newPrivacy(cfg, ingest.NewPrivacyMetrics(reg))
	if err != nil {
		return err
	}
	ready := map[string]func(context.Context) error{"postgres": pool.Ping}
	// The collector and the exposure log outlive ctx until the HTTP server has
	// drained, so requests in flight still get their events confirmed.
	pipeCtx, stopPipe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipe()
	var pipeline sync.WaitGroup
	var publisher *amqpbus.Publisher
	var exposures *ingest.ExposureLog
	var impressions *recommend.ImpressionLog
	if *role == "all" || *role == "api" {
		publisher = amqpbus.NewPublisher(cfg.AMQPURL, log, ingestMetrics)
		exposures = ingest.NewExposureLog(publisher, log, ingestMetrics, cfg.ExposureBuffer)
		pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
		defer stopPub()
		pipeline.Go(func() { publisher.Run(pubCtx) })
		expDone := make(chan struct{})
		go func() { exposures.Run(pipeCtx); close(expDone) }()
		// So do the recommendation impressions.
		impressions = recommend.NewImpressionLog(publisher, log, cfg.ExposureBuffer)
		impDone := make(chan struct{})
		go func() { impressions.Run(pipeCtx); close(impDone) }()
		// The exposure log flushes through the publisher, so the publisher stops after it.
		pipeline.Go(func() { <-expDone; <-impDone; stopPub() })
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lift_exposure_buffer_length",
			Help: "Exposures from /v1/decide waiting to be published (LIFT_EXPOSURE_BUFFER is the most).",
		}, func() float64 { return float64(exposures.Buffered()) }))
		ready["rabbitmq"] = publisher.Ready
		waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := publisher.WaitConnected(waitCtx); err != nil {
			log.Warn("RabbitMQ not reachable yet; /v1/events answers 503 until it is", "err", err)
		}
		cancel()
	}
	if *role == "all" || *role == "ingest" {
		sink, err := chsink.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
		if err != nil {
			return err
		}
		defer sink.Close()
		for range cfg.IngestConsumers {
			c := &amqpbus.Consumer{URL: cfg.AMQPURL, Sink: sink, Types: eventTypes, Log: log, Metrics: ingestMetrics, Privacy: privacy,
				BatchRows: cfg.IngestBatchRows, BatchWait: cfg.IngestBatchWait, Prefetch: cfg.IngestPrefetch}
			pipeline.Go(func() { c.Run(pipeCtx) })
		}
		// A copy of every dead letter is recorded for the dashboard; of all ingest
		// processes one records at a time (a single-active-consumer queue).
		deadLog := &amqpbus.DeadLetterLog{URL: cfg.AMQPURL, Sink: sink, Log: log, Privacy: privacy}
		pipeline.Go(func() { deadLog.Run(pipeCtx) })
		ready["clickhouse"] = sink.Ping
	}
	defer func() { stopPipe(); pipeline.Wait() }()

	streamsDone := make(chan struct{})
	deps := web.Deps{
		Log:       log,
		Snapshots: live,
		Keys:      keys,
		Manager:   experiments.NewService(store),
		KeyStore:  keyStore,
		Ready: func(ctx context.Context) map[string]error {
			errs := make(map[string]error, len(ready))
			for name, check := range ready {
				errs[name] = check(ctx)
			}
			return errs
		},
		Registry: reg,
		// With an admin address, the metrics are served there only: they describe
		// traffic, keys' rates and internals that the public need not see.
		AdminMetrics:   cfg.AdminAddr != "",
		TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		DecideRate:     float64(cfg.DecideRate),
		APIRate:        float64(cfg.APIRate),
		Privacy:        privacy,
		// GrowthBook streams end when the server shuts down (see srv below).
		StreamHeartbeat: cfg.StreamHeartbeat,
		StreamsPerKey:   cfg.StreamsPerKey,
		StreamsDone:     streamsDone,
	}
	if publisher != nil {
		deps.Events, deps.EventMetrics, deps.Exposures = publisher, ingestMetrics, exposures
		deps.Impressions = impressions
		deps.EventsRate = float64(cfg.EventsRate)
		deps.Types, deps.EventTypes = eventTypes, typereg.NewService(typeStore)
	}
	// Results and the bandit updater read ClickHouse on demand; the connection is
	// lazy, so lift starts (and decides) while ClickHouse is down.
	events, err := chstore.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	defer events.Close()
	if *role == "all" || *role == "api" {
		deps.Results = &experiments.ResultsService{Store: store, Events: events}
		deps.Bandits = &banditreport.Service{Config: store, Weights: banditstore.New(pool)}
		deps.SegmentStats = segstore.New(pool)
		deps.Recommendations, deps.RecommenderModels = models, recpg.New(pool)
		hooks := segstore.New(pool)
		hooks.WebhookGuard = webhookGuard
		deps.Webhooks = hooks
	}
	// Erasure and export reach ClickHouse on demand (lazy connection).
	gdprEvents, err := gdprch.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	defer gdprEvents.Close()
	gdprJobs := gdprpg.New(pool)
	// Jobs and audit entries name users by a digest keyed with the installation's
	// secret, shared by the api (requests, exports) and the erasure runner.
	subjects := &gdpr.Subjects{Key: gdprJobs.SubjectKey}
	retention := &gdpr.Retention{Partitions: gdprEvents, Policies: gdprJobs, DefaultMonths: cfg.RetentionMonths,
		Every: cfg.RetentionEvery, Log: log}
	if *role == "all" || *role == "api" {
		deps.GDPR = &gdpr.Service{Jobs: gdprJobs, Events: gdprEvents, Memberships: segstore.New(pool),
			Configuration: configEraser{store}, Subjects: subjects, Audit: gdprJobs, Pseudonymizer: privacy.Pseudonymizer}
		deps.Retention = retention
	}
	if *role == "all" || *role == "worker" {
		wm := newWorkerMetrics(reg)
		// Any number of processes may run the worker role; one at a time leads.
		updater := &bandit.Updater{Source: banditSource{config: store, events: events, results: &experiments.ResultsService{Store: store, Events: events}},
			Publisher: banditstore.New(pool), Log: log, Config: bandit.DefaultConfig(), Observe: wm.banditRound}
		elector := &leader.Elector{ConnString: cfg.PostgresURL, Name: "lift.bandit-updater", Log: log, OnChange: wm.leading("lift.bandit-updater")}
		pipeline.Go(func() { elector.Run(pipeCtx, updater.Run) })
		// The segment engine: a router (one leader) splits lift.segments into a
		// stream per shard; the worker processes share the shards (an advisory lock
		// each) and run one engine per shard they own. Every enter and exit also goes
		// to ClickHouse segment_changes, and rebuilds read ClickHouse events (lazy
		// connection: while ClickHouse is down the log waits and rebuilds retry).
		chSegments, err := segchsink.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
		if err != nil {
			return err
		}
		router := &amqprunner.Router{URL: cfg.AMQPURL, Shards: cfg.SegmentShards, Store: segstore.New(pool), Log: log, Privacy: privacy}
		// The router's lock keeps the name of the single engine it replaced, which
		// the dashboards and alerts know (lift_leader{name="lift.segment-engine"}).
		routerElector := &leader.Elector{ConnString: cfg.PostgresURL, Name: "lift.segment-engine", Log: log, OnChange: wm.leading("lift.segment-engine")}
		pipeline.Go(func() { routerElector.Run(pipeCtx, router.Run) })
		definitions := segmentDefinitions(store)
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
		pipeline.Go(func() { shards.Run(pipeCtx); chSegments.Close() })
		// Erasure jobs: one runner at a time; a job resumes from its saved progress
		// under whichever process leads next.
		erasures := &gdpr.Runner{Jobs: gdprJobs, Events: gdprEvents, Memberships: segstore.New(pool),
			Segments: segmentEraser{store: segstore.New(pool), defs: segmentDefinitions(store), staleAfter: time.Minute},
			Webhooks: segstore.New(pool), Configuration: configEraser{store}, Subjects: subjects, Log: log, Poll: cfg.ErasurePoll}
		erasureElector := &leader.Elector{ConnString: cfg.PostgresURL, Name: "lift.erasure", Log: log, OnChange: wm.leading("lift.erasure")}
		pipeline.Go(func() { erasureElector.Run(pipeCtx, erasures.Run) })
		// Recommenders: one trainer at a time, reading ClickHouse events (lazily
		// connected) and saving models to Postgres.
		trainingData, err := recch.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
		if err != nil {
			return err
		}
		defer trainingData.Close()
		trainer := &recommend.Trainer{Recommenders: recommenderSpecs(store), Source: trainingData, Store: recpg.New(pool), Log: log}
		trainerElector := &leader.Elector{ConnString: cfg.PostgresURL, Name: "lift.recommender-trainer", Log: log, OnChange: wm.leading("lift.recommender-trainer")}
		pipeline.Go(func() { trainerElector.Run(pipeCtx, trainer.Run) })
		retentionElector := &leader.Elector{ConnString: cfg.PostgresURL, Name: "lift.retention", Log: log, OnChange: wm.leading("lift.retention")}
		pipeline.Go(func() { retentionElector.Run(pipeCtx, retention.Run) })
		// Webhook deliveries: every worker process drains the outbox (claims are
		// leased, so they share it).
		dispatcher := &webhooks.Dispatcher{Store: segstore.New(pool).Outbox(), Guard: webhookGuard, Log: log, Metrics: webhooks.NewMetrics(reg)}
		pipeline.Go(func() { dispatcher.Run(pipeCtx) })
	}
	if *role == "all" || *role == "api" {
		// The dashboard, and dashboard sessions on /api/v1, come with the management API.
		deps.Sessions = session.New(keyStore, keyStore, 0)
		// The live view reads recent rows from ClickHouse (lazily connected) and asks
		// RabbitMQ how many dead letters wait.
		feed, err := chsink.Open(cfg.ClickHouseAddr, cfg.ClickHouseDB)
		if err != nil {
			return err
		}
		defer feed.Close()
		inspector := &amqpbus.QueueInspector{URL: cfg.AMQPURL}
		defer inspector.Close()
		db := dashboard.New(dashboard.Deps{Log: log, Config: experiments.NewService(store),
			Keys: keyStore, Users: keyStore, Sessions: deps.Sessions, Results: deps.Results,
			Bandits: deps.Bandits, EventTypes: typeStore, TypeCreator: typereg.NewService(typeStore), Members: members,
			Activity: segmentActivity{segstore.New(pool)}, Feed: feed, DeadQueue: deadQueue{inspector},
			Privacy: dashboardPrivacy{retention, deps.GDPR.(*gdpr.Service)}, PrivacyConfig: privacyConfig(privacy, cfg)})
		// The list and the experiment page read the same results, kept fresh here.
		pipeline.Go(func() { db.RefreshResults(pipeCtx) })
		deps.Dashboard = db
	}
	if cfg.DemoClientKey != "" && (*role == "all" || *role == "api") {
		deps.Demo = demo.Shop{ClientKey: cfg.DemoClientKey}
	}
	handler := web.New(deps)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// Shutdown waits for requests in flight, which open event streams never finish.
	srv.RegisterOnShutdown(func() { close(streamsDone) })
	// Tests and scripts read this line to learn the address (the port may be 0).
	fmt.Fprintf(stdout, "lift listening on http://%s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.AdminAddr != "" {
		adminLn, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("LIFT_ADMIN_ADDR: %w", err)
		}
		admin := &http.Server{Handler: web.Admin(reg), ReadHeaderTimeout: 10 * time.Second}
		defer admin.Close()
		go func() { _ = admin.Serve(adminLn) }()
		fmt.Fprintf(stdout, "lift admin on http://%s\n", adminLn.Addr())
		log.Info("admin address (pprof, metrics)", "addr", adminLn.Addr().String())
	}
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	stopPipe()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
